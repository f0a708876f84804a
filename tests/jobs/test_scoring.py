"""CLIP scores with conftest's tiny open_clip model (random weights, nothing downloaded), loaded
through the app's own path: a config JSON registered with open_clip, a checkpoint file."""

import logging

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image as PILImage

from generation import scoring
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Image, Member


def pictures(count, size=64):
    rng = np.random.default_rng(count)
    return [
        PILImage.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def reference_embeddings(tiny_clip, images, texts):
    """Normalised image and text embeddings computed directly with open_clip, not through
    generation.scoring."""
    model, preprocess = tiny_clip["model"], tiny_clip["preprocess"]
    tokenizer = open_clip.get_tokenizer(tiny_clip["name"])
    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(i) for i in images]))
        text_features = model.encode_text(tokenizer(texts))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    return image_features.numpy(), text_features.numpy()


def reference_scores(tiny_clip, images, texts):
    """Cosine similarities computed directly with open_clip, not through generation.scoring."""
    image_features, text_features = reference_embeddings(tiny_clip, images, texts)
    return (image_features @ text_features.T).tolist()


def test_scores_are_the_cosine_similarities_open_clip_computes(clip_on):
    images = pictures(3)
    texts = ["two old people on a bench", "loneliness"]
    scores = scoring.image_scores(images, *texts)
    # The reference is the model that was saved: the app's model, initialised anew and then
    # loaded from the checkpoint, scores the same only if it really loaded those weights.
    expected = reference_scores(clip_on, images, texts)
    assert [[s["score"], s["topic_score"]] for s in scores] == [
        pytest.approx(row, abs=1e-5) for row in expected
    ]
    assert all(-1 <= s[key] <= 1 for s in scores for key in ("score", "topic_score"))


def test_the_images_embeddings_come_with_their_scores(clip_on):
    images = pictures(3)
    scores = scoring.image_scores(images, "an empty chair", "loneliness")
    expected, _ = reference_embeddings(clip_on, images, ["an empty chair"])
    stored = [np.frombuffer(s["embedding"], dtype="<f4") for s in scores]
    assert [vector.shape for vector in stored] == [(16,)] * 3  # the tiny model's embed_dim
    for vector, reference in zip(stored, expected, strict=True):
        assert vector == pytest.approx(reference, abs=1e-5)
        assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)


def test_a_text_embedding_is_the_normalised_one_open_clip_computes(clip_on):
    vector = scoring.text_embedding("an empty chair")
    _, expected = reference_embeddings(clip_on, pictures(1), ["an empty chair"])
    assert vector.dtype == np.float32
    assert vector == pytest.approx(expected[0], abs=1e-5)
    assert scoring.is_configured()


def test_text_embeddings_are_encoded_once(clip_on, monkeypatch):
    scorer = scoring.get_scorer()
    encoded = []
    original = scorer.model.encode_text

    def counting(tokens, *args, **kwargs):
        encoded.append(tokens.shape[0])
        return original(tokens, *args, **kwargs)

    monkeypatch.setattr(scorer.model, "encode_text", counting)
    first = scoring.image_scores(pictures(2), "a chair nobody sits on", "empty rooms")
    assert sum(encoded) == 2  # the prompt and the topic
    again = scoring.image_scores(pictures(2), "a chair nobody sits on", "empty rooms")
    assert sum(encoded) == 2
    assert again == first
    scoring.image_scores(pictures(1), "a different prompt", "empty rooms")
    assert sum(encoded) == 3  # only the new prompt


def test_one_scorer_per_process(clip_on):
    assert scoring.get_scorer() is scoring.get_scorer()


def test_scoring_is_off_without_weights(settings):
    settings.PARTYHUB_CLIP_PRETRAINED = ""
    assert scoring.get_scorer() is None
    assert not scoring.is_configured()
    assert scoring.text_embedding("a prompt") is None
    assert (
        scoring.image_scores(pictures(2), "a prompt", "a topic")
        == [{"score": None, "topic_score": None, "embedding": None}] * 2
    )


def test_weights_that_cannot_load_leave_scores_null_and_are_logged_once(
    clip_on, settings, tmp_path, caplog
):
    settings.PARTYHUB_CLIP_PRETRAINED = str(tmp_path / "missing.pt")
    with caplog.at_level(logging.ERROR, logger="generation.scoring"):
        assert scoring.is_configured()  # not known to be broken before it is loaded
        for _ in range(2):
            scores = scoring.image_scores(pictures(1), "a prompt", "a topic")
            assert scores == [{"score": None, "topic_score": None, "embedding": None}]
    assert len([r for r in caplog.records if "could not load" in r.getMessage()]) == 1
    assert not scoring.is_configured()
    assert scoring.text_embedding("a prompt") is None


def test_a_tag_is_read_from_the_local_hugging_face_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(scoring.ScorerUnavailable, match="hf download laion/CLIP-ViT-B-32"):
        scoring.resolve_weights("ViT-B-32", "laion2b_s34b_b79k")
    # The layout `hf download` leaves behind: refs/main names the snapshot holding the file.
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    weights = repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    path, tag_cfg = scoring.resolve_weights("ViT-B-32", "laion2b_s34b_b79k")
    assert path == str(weights)
    assert tag_cfg["hf_hub"].startswith("laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_an_unknown_tag_is_refused(clip_on):
    with pytest.raises(scoring.ScorerUnavailable, match="neither a file nor a pretrained tag"):
        scoring.resolve_weights(clip_on["name"], "no-such-tag")


# --- The render job ---------------------------------------------------------------------------

SMALL = {"width": 64, "height": 64, "steps": 2, "count": 2}


@pytest.fixture
def rendered(party, host):
    """Render a prompt with the offline model; returns the render and its render.done event."""

    def render():
        author = Member.objects.get(session_key=host.session_key)
        _, queued = party.submit_prompt(author, "an empty chair", params=SMALL)
        run_render(queued.pk)
        done = Event.objects.get(party=party, type="render.done", payload__render=queued.pk)
        return queued, done.payload

    return render


@pytest.mark.django_db(transaction=True)
def test_a_render_stores_and_announces_both_scores(clip_on, rendered, party):
    render, done = rendered()
    rows = list(Image.objects.filter(render=render).order_by("index"))
    assert len(rows) == 2
    pixels = [PILImage.open(row.file.path) for row in rows]
    expected = reference_scores(clip_on, pixels, ["an empty chair", party.topic])
    embeddings, _ = reference_embeddings(clip_on, pixels, [party.topic])
    for row, announced, (score, topic_score), embedding in zip(
        rows, done["images"], expected, embeddings, strict=True
    ):
        assert row.score == pytest.approx(score, abs=1e-5)
        assert row.topic_score == pytest.approx(topic_score, abs=1e-5)
        assert (announced["score"], announced["topic_score"]) == (row.score, row.topic_score)
        assert np.frombuffer(row.embedding, dtype="<f4") == pytest.approx(embedding, abs=1e-5)
        assert "embedding" not in announced  # bytes stay in the database, out of the events


@pytest.mark.django_db(transaction=True)
def test_without_a_scorer_a_render_keeps_null_scores(rendered, settings):
    settings.PARTYHUB_CLIP_PRETRAINED = ""
    render, done = rendered()
    assert [(i.score, i.topic_score, i.embedding) for i in Image.objects.filter(render=render)] == [
        (None, None, None)
    ] * 2
    assert [(i["score"], i["topic_score"]) for i in done["images"]] == [(None, None)] * 2


@pytest.mark.django_db(transaction=True)
def test_a_scorer_that_fails_never_fails_the_render(clip_on, rendered, monkeypatch):
    def broken(*args):
        raise RuntimeError("CLIP fell over")

    monkeypatch.setattr(scoring.get_scorer(), "score_images", broken)
    render, done = rendered()
    render.refresh_from_db()
    assert render.status == render.Status.DONE
    assert [(i["score"], i["topic_score"]) for i in done["images"]] == [(None, None)] * 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_two_parties_renders_scores_each_image_against_its_own_texts(
    clip_on, party, host, settings, monkeypatch
):
    """One CLIP pass scores the whole batch; each image still gets its own prompt's and its own
    party's topic's similarity, as if scored alone."""
    from partyhub.models import Party

    settings.PARTYHUB_MAX_BATCH = 8
    other, stranger = Party.start(topic="distant planets", session_key="q" * 32, host_name="Zed")
    author = Member.objects.get(session_key=host.session_key)
    passes = []
    scorer = scoring.get_scorer()
    real = scorer.score_images
    monkeypatch.setattr(scorer, "score_images", lambda *a: passes.append(len(a[0])) or real(*a))
    _, first = party.submit_prompt(author, "an empty chair", params=SMALL)
    _, second = other.submit_prompt(
        Member.objects.get(session_key=stranger.session_key), "a ringed world", params=SMALL
    )
    run_render(first.pk)
    assert passes == [4]  # both renders' two images, in one pass
    for render, texts in (
        (first, ["an empty chair", party.topic]),
        (second, ["a ringed world", "distant planets"]),
    ):
        rows = list(Image.objects.filter(render=render).order_by("index"))
        pixels = [PILImage.open(row.file.path) for row in rows]
        for row, (score, topic_score) in zip(
            rows, reference_scores(clip_on, pixels, texts), strict=True
        ):
            assert row.score == pytest.approx(score, abs=1e-5)
            assert row.topic_score == pytest.approx(topic_score, abs=1e-5)
