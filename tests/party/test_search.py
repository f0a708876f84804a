"""Search: a party's images (members, or anyone for a public party) and every published
gallery's, by prompt words, author, seed and model, and by meaning: with conftest's tiny CLIP
(no cut-off known for it: every image ranks), and with the bundled offline CLIP on pictures of
its world (its measured cut-off: only close images are matches, the nearest come apart).

Kept in one piece (past 400 lines): both CLIPs' fixtures and the drawn pictures serve every
case, from word filters to the cut-off, and read as one account of how search ranks."""

import numpy as np
import open_clip
import pytest
import torch
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage

from generation import scoring
from offline import world
from partyhub import search as search_module
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Party, Prompt, Render

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def measured_cutoffs(settings):
    """Each model's measured cut-off (search.MIN_SIMILARITY), whatever the environment says."""
    settings.PARTYHUB_SEARCH_MIN_SIMILARITY = None


def add_image(party, author, text, *, seed=1, model="offline", negative="", **fields):
    """An image of a rendered prompt, stored as the render job stores one (no pixels needed)."""
    status = fields.pop("status", Prompt.Status.SUBMITTED)
    params = {"model": model, "seed": seed, "negative": negative, "count": 1}
    prompt = Prompt.objects.create(
        party=party, author=author, text=text, params=params, status=status
    )
    render = Render.objects.create(
        party=party, prompt=prompt, params=params, status=Render.Status.DONE
    )
    return Image.objects.create(
        render=render,
        party=party,
        index=0,
        file=f"parties/{party.code}/r{render.pk}-0.png",
        seed=seed,
        width=64,
        height=64,
        **fields,
    )


def search(person, party, **params):
    return person.client.get(f"/api/parties/{party.code}/search", params)


def ids(response):
    assert response.status_code == 200, response.json()
    return [result["id"] for result in response.json()["results"]]


def error_code(response, status=400):
    assert response.status_code == status, response.content
    return response.json()["error"]["code"]


@pytest.fixture
def gallery(party, pm, member):
    """Images of the party, oldest first."""
    return [
        add_image(party, pm, "Two old people on a bench", seed=7),
        add_image(party, member, "an empty chair", seed=8, model="sd-turbo"),
        add_image(party, pm, "an old CHAIR in the rain", seed=9, negative="people"),
        add_image(party, member, "old people, empty room", seed=7, model="sd-turbo"),
    ]


# --- Filters ----------------------------------------------------------------------------------


def test_it_finds_every_word_in_any_case_newest_first(gallery, host):
    bench, chair, old_chair, room = gallery
    assert ids(search(host, gallery[0].party, q="old")) == [room.pk, old_chair.pk, bench.pk]
    assert ids(search(host, gallery[0].party, q="OLD chair")) == [old_chair.pk]
    assert ids(search(host, gallery[0].party, q="  chair  ")) == [old_chair.pk, chair.pk]
    assert ids(search(host, gallery[0].party, q="chair bench")) == []


def test_it_does_not_search_the_negative_prompt(gallery, host, party):
    bench, _, _, room = gallery
    # "people" is the negative prompt of the old chair, which is not found for it.
    assert ids(search(host, party, q="people")) == [room.pk, bench.pk]


def test_it_finds_an_authors_images_by_the_whole_name_in_any_case(gallery, party, host):
    bench, _, old_chair, _ = gallery
    joanne = party.join("joanne-session", "Joanne")
    hers = add_image(party, joanne, "a chair by the window")
    assert ids(search(host, party, author="ann")) == [old_chair.pk, bench.pk]
    assert ids(search(host, party, author="Joanne")) == [hers.pk]
    assert ids(search(host, party, author="Jo")) == []


def test_it_finds_a_seed_exactly(gallery, host, party):
    bench, _, _, room = gallery
    assert ids(search(host, party, seed="7")) == [room.pk, bench.pk]
    assert ids(search(host, party, seed="70")) == []


def test_it_finds_a_model_by_its_preset_name(gallery, host, party):
    _, chair, _, room = gallery
    assert ids(search(host, party, model="sd-turbo")) == [room.pk, chair.pk]
    assert ids(search(host, party, model="sd")) == []


def test_filters_combine(gallery, host, party):
    bench, _, _, room = gallery
    assert ids(search(host, party, q="people", seed="7")) == [room.pk, bench.pk]
    assert ids(search(host, party, q="people", seed="7", model="sd-turbo")) == [room.pk]
    assert ids(search(host, party, q="people", seed="7", author="ann")) == [bench.pk]
    assert ids(search(host, party, q="people", author="bob", model="offline")) == []


def test_a_result_carries_its_prompt_author_party_votes_and_pick(party, pm, member, host):
    image = add_image(party, member, "an empty chair", seed=965400086, model="sd-turbo")
    image.vote(pm, 1)
    image.vote(member, 1)
    image.pick(pm, note="nobody sits there")
    (result,) = search(host, party, q="chair").json()["results"]
    assert result == {
        "id": image.pk,
        "party": party.code,
        "render": image.render_id,
        "url": f"/media/parties/{party.code}/r{image.render_id}-0.png",
        "width": 64,
        "height": 64,
        "seed": 965400086,
        "model": "sd-turbo",
        "prompt": "an empty chair",
        "author": "Bob",
        "votes": 2,
        "picked": True,
        "score": None,
        "created_at": image.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_hidden_images_and_proposals_never_rendered_are_not_found(party, pm, member, host):
    shown = add_image(party, pm, "a chair")
    add_image(party, pm, "a hidden chair", hidden=True)
    add_image(party, member, "a chair set aside", status=Prompt.Status.SET_ASIDE)
    add_image(party, member, "a proposed chair", status=Prompt.Status.PROPOSED)
    assert ids(search(host, party, q="chair")) == [shown.pk]


def test_it_returns_at_most_limit_images_50_unless_asked(party, pm, host):
    images = [add_image(party, pm, f"chair {n}") for n in range(52)]
    newest_first = [image.pk for image in reversed(images)]
    assert ids(search(host, party, q="chair")) == newest_first[:50]
    assert ids(search(host, party, q="chair", limit="3")) == newest_first[:3]
    assert ids(search(host, party, q="chair", limit="200")) == newest_first


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", "2.5", "1e2", "٣"])
def test_a_limit_out_of_range_is_refused_not_clamped(party, host, limit):
    assert error_code(search(host, party, q="chair", limit=limit)) == "invalid_limit"


@pytest.mark.parametrize("seed", ["-1", "4294967296", "seven", "7.0", " "])
def test_a_seed_that_is_not_a_whole_number_in_range_is_refused(party, host, seed):
    response = search(host, party, seed=seed, q="chair")
    if seed.strip():
        assert error_code(response) == "invalid_seed"
    else:
        assert response.status_code == 200  # an empty field is no filter


def test_a_search_for_nothing_is_refused(party, host):
    assert error_code(search(host, party)) == "empty_query"
    assert error_code(search(host, party, q="   ", author="", seed="")) == "empty_query"
    assert error_code(search(host, party, limit="5")) == "empty_query"


def test_too_long_a_text_is_refused(party, host):
    assert error_code(search(host, party, q="chair " * 40)) == "invalid_query"
    assert error_code(search(host, party, author="x" * 201)) == "invalid_query"


# --- Who may search a party -------------------------------------------------------------------


def test_members_search_a_private_party_and_outsiders_may_not(
    gallery, party, host, guest, outsider
):
    assert len(ids(search(host, party, q="chair"))) == 2
    assert len(ids(search(guest, party, q="chair"))) == 2
    assert error_code(search(outsider, party, q="chair"), 403) == "not_a_member"
    no_session = Client().get(f"/api/parties/{party.code}/search", {"q": "chair"})
    assert error_code(no_session, 403) == "not_a_member"


def test_anyone_searches_a_public_party(gallery, party, outsider):
    assert error_code(search(outsider, party, q="chair"), 403) == "not_a_member"
    Party.objects.filter(pk=party.pk).update(public=True)
    assert len(ids(search(outsider, party, q="chair"))) == 2


def test_an_unknown_party_and_a_post_are_refused(party, host):
    response = host.client.get("/api/parties/ZZZZZZ/search", {"q": "chair"})
    assert error_code(response, 404) == "not_found"
    response = host.client.post(f"/api/parties/{party.code}/search?q=chair")
    assert error_code(response, 405) == "method_not_allowed"


def test_a_party_search_finds_only_that_partys_images(gallery, party, host):
    other, _ = Party.start(topic="chairs", session_key="cleo-session", host_name="Cleo")
    add_image(other, other.members.get(), "an empty chair")
    assert set(ids(search(host, party, q="chair"))) == {gallery[1].pk, gallery[2].pk}


# --- Every published gallery ------------------------------------------------------------------


def test_the_galleries_search_finds_published_parties_only(gallery, party):
    published, _ = Party.start(topic="chairs", session_key="cleo-session", host_name="Cleo")
    cleos = add_image(published, published.members.get(), "an empty chair")
    public, _ = Party.start(topic="rooms", public=True, session_key="dan-session", host_name="Dan")
    add_image(public, public.members.get(), "a chair, public but not published")
    Party.objects.filter(pk=published.pk).update(published_at=timezone.now())

    anyone = Client()
    response = anyone.get("/api/search", {"q": "chair"})
    assert ids(response) == [cleos.pk]
    assert response.json()["results"][0]["party"] == published.code

    Party.objects.filter(pk=party.pk).update(published_at=timezone.now())
    response = anyone.get("/api/search", {"q": "chair", "author": "ANN"})
    assert ids(response) == [gallery[2].pk]
    assert ids(anyone.get("/api/search", {"q": "chair"})) == [
        cleos.pk,
        gallery[2].pk,
        gallery[1].pk,
    ]
    # Unpublished again: gone from the search.
    Party.objects.filter(pk=party.pk).update(published_at=None)
    assert ids(anyone.get("/api/search", {"q": "chair"})) == [cleos.pk]


def test_the_galleries_search_refuses_bad_input_the_same_way(db):
    anyone = Client()
    assert error_code(anyone.get("/api/search")) == "empty_query"
    assert error_code(anyone.get("/api/search", {"seed": "x"})) == "invalid_seed"
    assert error_code(anyone.get("/api/search", {"q": "a", "limit": "500"})) == "invalid_limit"
    response = anyone.get("/api/search", {"like": "an empty chair"})
    assert error_code(response, 409) == "search_unavailable"


# --- By meaning -------------------------------------------------------------------------------


def pictures(count, size=64):
    rng = np.random.default_rng(100 + count)
    return [
        PILImage.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def reference_similarities(tiny_clip, images, text):
    """Each image's cosine similarity to `text`, computed with open_clip directly."""
    model, preprocess = tiny_clip["model"], tiny_clip["preprocess"]
    tokenizer = open_clip.get_tokenizer(tiny_clip["name"])
    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(i) for i in images]))
        text_features = model.encode_text(tokenizer([text]))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    return (image_features @ text_features.T)[:, 0].tolist()


@pytest.fixture
def embedded(clip_on, party, pm):
    """Six images whose embeddings the app's scorer computed from known pictures, and each
    one's similarity to "an empty chair" by the reference model."""
    pixels = pictures(6)
    scores = scoring.image_scores(pixels, "a prompt", None)
    images = [
        add_image(party, pm, f"picture {n}", seed=n % 2, embedding=score["embedding"])
        for n, score in enumerate(scores)
    ]
    return images, reference_similarities(clip_on, pixels, "an empty chair")


def test_by_meaning_the_most_similar_image_comes_first(embedded, host, party):
    images, similarities = embedded
    expected = sorted(zip(similarities, [i.pk for i in images], strict=True), reverse=True)
    assert len({round(s, 4) for s in similarities}) == 6  # a strict order to check
    response = search(host, party, like="an empty chair")
    assert ids(response) == [pk for _, pk in expected]
    assert [r["score"] for r in response.json()["results"]] == [
        pytest.approx(s, abs=1e-5) for s, _ in expected
    ]
    assert response.json()["clip"] is True


def test_by_meaning_with_filters_and_a_limit(embedded, host, party):
    images, similarities = embedded
    even = sorted((s, i.pk) for s, i in zip(similarities, images, strict=True) if i.seed == 0)
    assert ids(search(host, party, like="an empty chair", seed="0")) == [
        pk for _, pk in reversed(even)
    ]
    assert ids(search(host, party, like="an empty chair", seed="0", limit="1")) == [even[-1][1]]
    assert ids(search(host, party, like="an empty chair", q="nothing like it")) == []


def test_by_meaning_skips_images_without_a_comparable_embedding(embedded, host, party, pm):
    images, _ = embedded
    add_image(party, pm, "rendered while CLIP was off")
    add_image(party, pm, "another model's", embedding=scoring.embedding_bytes(np.ones(8) / 8))
    found = ids(search(host, party, like="an empty chair"))
    assert sorted(found) == sorted(i.pk for i in images)


def test_by_meaning_without_clip_is_unavailable(party, host, pm):
    add_image(party, pm, "an empty chair")
    assert error_code(search(host, party, like="an empty chair"), 409) == "search_unavailable"
    assert search(host, party, q="chair").json()["clip"] is False


def test_by_meaning_with_clip_weights_that_cannot_load(clip_on, settings, tmp_path, party, host):
    settings.PARTYHUB_CLIP_PRETRAINED = str(tmp_path / "missing.pt")
    assert search(host, party, q="chair").json()["clip"] is True  # not tried yet
    assert error_code(search(host, party, like="a chair"), 409) == "search_unavailable"
    assert search(host, party, q="chair").json()["clip"] is False


def test_rendered_images_are_found_by_meaning(clip_on, party, pm, host):
    """The whole path: the render job stores each image's embedding, search ranks them."""
    small = {"width": 64, "height": 64, "steps": 2, "count": 2}
    rendered = []
    for text in ("an empty chair", "two old people"):
        _, queued = party.submit_prompt(pm, text, params=small)
        run_render(queued.pk)
        rendered += list(Image.objects.filter(render=queued).order_by("index"))
    pixels = [PILImage.open(image.file.path) for image in rendered]
    similarities = reference_similarities(clip_on, pixels, "nobody sits there")
    reference = {
        image.pk: similarity for image, similarity in zip(rendered, similarities, strict=True)
    }
    results = search(host, party, like="nobody sits there").json()["results"]
    # Ranked by each image's similarity, the reference model's to within rounding (two random
    # renders may be closer than that, so their order is not compared with the reference's).
    assert sorted(result["id"] for result in results) == sorted(reference)
    scores = [result["score"] for result in results]
    assert scores == sorted(scores, reverse=True)
    for result in results:
        assert result["score"] == pytest.approx(reference[result["id"]], abs=1e-3)
    chairs = {image.pk for image in rendered[:2]}
    assert ids(search(host, party, like="nobody sits there", q="chair")) == [
        result["id"] for result in results if result["id"] in chairs
    ]


def test_a_search_by_words_has_no_nearest_and_no_cutoff(gallery, host, party):
    answer = search(host, party, q="chair").json()
    assert answer["nearest"] == []
    assert answer["min_similarity"] is None
    assert answer["unknown_words"] == []


def test_without_a_measured_cutoff_every_image_is_a_match(embedded, host, party):
    answer = search(host, party, like="an empty chair").json()
    assert len(answer["results"]) == 6
    assert answer["nearest"] == []
    assert answer["min_similarity"] is None
    assert answer["unknown_words"] == []  # a model with no small vocabulary known


def test_a_configured_cutoff_splits_matches_from_the_nearest(embedded, host, party, settings):
    images, similarities = embedded
    pairs = zip(similarities, [i.pk for i in images], strict=True)
    ranked = [pk for _, pk in sorted(pairs, reverse=True)]
    settings.PARTYHUB_SEARCH_MIN_SIMILARITY = float(np.median(similarities))
    answer = search(host, party, like="an empty chair").json()
    assert answer["min_similarity"] == settings.PARTYHUB_SEARCH_MIN_SIMILARITY
    assert [r["id"] for r in answer["results"]] == ranked[:3]
    assert [r["id"] for r in answer["nearest"]] == ranked[3:]
    assert all(r["score"] < answer["min_similarity"] for r in answer["nearest"])


# --- By meaning with the offline CLIP: pictures of its world ----------------------------------


def drawn(colour, shape, size="large", place="centre", background="white", jitter=0):
    """A picture of one shape, drawn exactly by the offline world."""
    shapes = (world.Shape(shape, colour, size, place),)
    return world.draw(world.Scene(shapes, background, "filled", seed=jitter))


@pytest.fixture
def shapes(offline_clip, party, pm, member):
    """Pink stars by Bob and red circles by Ann, each embedded by the app's scorer with the
    offline CLIP, stored alternately (so the newest first is not the most similar first)."""
    pictures = {
        "pink star, large": drawn("pink", "star"),
        "red circle, large": drawn("red", "circle"),
        "pink star, small, blue background": drawn("pink", "star", "small", "left", "blue", 1),
        "red circle, on black": drawn("red", "circle", background="black", jitter=1),
        "pink star, at the top, grey background": drawn("pink", "star", "large", "top", "grey", 2),
        "red circle, small, green background": drawn("red", "circle", "small", "left", "green", 2),
    }
    scores = scoring.image_scores(list(pictures.values()), "a prompt", None)
    stored = {}
    for n, (text, score) in enumerate(zip(pictures, scores, strict=True)):
        author = member if "pink star" in text else pm
        stored[text] = add_image(party, author, text, seed=n, embedding=score["embedding"])
    return stored


def named(answer, key):
    return [r["prompt"] for r in answer[key]]


def test_a_pink_star_finds_the_pink_stars_first_and_not_the_red_circles(shapes, host, party):
    answer = search(host, party, like="a pink star").json()
    cutoff = answer["min_similarity"]
    assert cutoff == search_module.MIN_SIMILARITY["partyhub-offline-clip"]
    assert sorted(named(answer, "results")) == sorted(t for t in shapes if "pink star" in t)
    assert sorted(named(answer, "nearest")) == sorted(t for t in shapes if "red circle" in t)
    scores = [r["score"] for r in answer["results"] + answer["nearest"]]
    assert scores == sorted(scores, reverse=True)  # the best first, matches before the nearest
    assert all(r["score"] >= cutoff for r in answer["results"])
    assert all(r["score"] < cutoff for r in answer["nearest"])


def test_a_red_circle_finds_the_red_circles_first(shapes, host, party):
    answer = search(host, party, like="a red circle").json()
    found = named(answer, "results") + named(answer, "nearest")
    assert sorted(found[:3]) == sorted(t for t in shapes if "red circle" in t)
    assert set(named(answer, "results")) >= {t for t in shapes if "red circle" in t}
    # The offline CLIP reads warm colours loosely: the large pink star on white is about 0.6
    # like "a red circle", over the cut-off, so it is a match, if after every red circle.
    assert "pink star, small, blue background" in named(answer, "nearest")


def test_nothing_close_says_so_and_offers_the_nearest(shapes, host, party):
    answer = search(host, party, like="a green moon").json()
    assert answer["results"] == []
    nearest = answer["nearest"]
    assert len(nearest) == search_module.NEAREST == len(shapes)
    scores = [r["score"] for r in nearest]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) < answer["min_similarity"]
    assert answer["unknown_words"] == []


def test_words_the_offline_clip_never_learned_are_named(shapes, host, party):
    answer = search(host, party, like="a pink star in the night sky").json()
    assert answer["unknown_words"] == ["night", "sky"]
    # The pink stars first; the unknown words blur the rest (so the page names them).
    assert sorted(named(answer, "results")[:3]) == sorted(t for t in shapes if "pink star" in t)
    # Nothing it knows: its similarities would be noise (a red circle is 0.52 like "an empty
    # chair"), so it is refused, not answered with matches.
    response = search(host, party, like="an empty chair")
    assert error_code(response) == "unknown_words"
    assert "“a pink star”" in response.json()["error"]["message"]
    assert error_code(search(host, party, like="in the night sky")) == "unknown_words"


def test_the_nearest_only_fill_the_room_the_matches_leave_under_the_limit(shapes, host, party):
    answer = search(host, party, like="a pink star", limit="2").json()
    assert len(answer["results"]) == 2
    assert answer["nearest"] == []
    answer = search(host, party, like="a pink star", limit="4").json()
    assert (len(answer["results"]), len(answer["nearest"])) == (3, 1)
    answer = search(host, party, like="a green moon", limit="2").json()
    assert (len(answer["results"]), len(answer["nearest"])) == (0, 2)


def test_the_other_filters_hold_before_the_ranking(shapes, host, party):
    answer = search(host, party, like="a pink star", author="bob").json()
    assert sorted(named(answer, "results")) == sorted(t for t in shapes if "pink star" in t)
    assert answer["nearest"] == []
    answer = search(host, party, like="a pink star", author="ann").json()
    assert answer["results"] == []
    assert sorted(named(answer, "nearest")) == sorted(t for t in shapes if "red circle" in t)


def test_equally_similar_images_come_newest_first(offline_clip, party, pm, host):
    """The same picture embedded alone and in a batch differs in the last float bits; such
    near-equal similarities are a tie (to 4 decimals), and ties come newest first."""
    (star,) = scoring.image_scores([drawn("pink", "star")], "a prompt", None)
    vector = np.frombuffer(star["embedding"], dtype=scoring.EMBEDDING_DTYPE).astype(np.float64)
    query = scoring.text_embedding("a pink star").astype(np.float64)
    nudged = vector + 1e-6 * query  # a hair closer to the text, as float noise may make it
    nudged = scoring.embedding_bytes(nudged / np.linalg.norm(nudged))
    older = add_image(party, pm, "the older", embedding=nudged)
    newer = add_image(party, pm, "the newer", embedding=star["embedding"])
    results = search(host, party, like="a pink star").json()["results"]
    assert [r["id"] for r in results] == [newer.pk, older.pk]
    newer_score, older_score = (r["score"] for r in results)
    assert 0 < older_score - newer_score < 1e-5  # the older is a hair more similar: a tie


def test_rendered_pink_stars_come_before_red_circles(offline_clip, party, pm, host):
    """The whole path with the offline models: renders stored and embedded, then searched."""
    # Seeds 8 and 9 draw pink stars with the weights of 2026-12-06 (seed 4 draws a cross, and
    # the star of seed 6 scores 0.43, under the search's 0.45): what is tested is the search.
    made = {}
    for text in ("a pink star", "a red circle"):
        _, queued = party.submit_prompt(pm, text, params={"count": 2, "seed": 8})
        run_render(queued.pk)
        made[text] = {image.pk for image in Image.objects.filter(render=queued)}
    answer = search(host, party, like="a pink star").json()
    found = [r["id"] for r in answer["results"]]
    assert set(found) == made["a pink star"], answer
    assert {r["id"] for r in answer["nearest"]} == made["a red circle"]


# --- Pages ------------------------------------------------------------------------------------


def test_the_room_has_a_search_box_that_knows_whether_clip_is_there(party, host, settings):
    page = host.client.get(f"/p/{party.code}/").content.decode()
    assert f'data-search-url="/api/parties/{party.code}/search"' in page
    assert 'data-clip="0"' in page
    assert "partyhub/search.js" in page


def test_the_room_offers_search_by_meaning_with_clip(clip_on, party, host):
    page = host.client.get(f"/p/{party.code}/").content.decode()
    assert 'data-clip="1"' in page


def test_the_galleries_search_page(db):
    page = Client().get("/search/").content.decode()
    assert 'data-search-url="/api/search"' in page
    assert 'class="search-nearest" hidden' in page
    assert 'data-scope="galleries"' in page
    assert "partyhub/search.js" in page


def test_the_galleries_page_gives_an_example_the_clip_model_knows(db, settings, offline_clip):
    assert "by meaning (“a pink star”)" in Client().get("/search/").content.decode()
    settings.PARTYHUB_CLIP_MODEL = "ViT-B-32"
    assert "by meaning (“an empty chair”)" in Client().get("/search/").content.decode()
