"""Search: a party's images (members, or anyone for a public party) and every published
gallery's, by prompt words, author, seed and model, and by meaning with conftest's tiny CLIP."""

import numpy as np
import open_clip
import pytest
import torch
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage

from generation import scoring
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Party, Prompt, Render

pytestmark = pytest.mark.django_db


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
    expected = [i.pk for _, i in sorted(zip(similarities, rendered, strict=True), reverse=True)]
    assert ids(search(host, party, like="nobody sits there")) == expected
    chairs = {image.pk for image in rendered[:2]}
    assert ids(search(host, party, like="nobody sits there", q="chair")) == [
        pk for pk in expected if pk in chairs
    ]


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
    assert 'data-scope="galleries"' in page
    assert "partyhub/search.js" in page
