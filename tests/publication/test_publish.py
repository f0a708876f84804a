"""Publishing the party's read-only gallery at /g/<code>/: who may publish and unpublish, what the
page shows (picks first, Open Graph tags for sharing) and the 404 once it is taken down."""

from html.parser import HTMLParser

import pytest
from django.test import Client

from partyhub.jobs.runner import run_render
from partyhub.models import Event, Image, Member

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1}


class Page(HTMLParser):
    """The meta tags (by property or name) and the images shown, in document order."""

    def __init__(self, html):
        super().__init__()
        self.meta, self.figures, self.images = {}, [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and "content" in attrs:
            self.meta[attrs.get("property") or attrs.get("name")] = attrs["content"]
        if tag == "figure" and "data-image" in attrs:
            self.figures.append(int(attrs["data-image"]))
        if tag == "img":
            self.images.append(attrs["src"])


def publish(person, party, published):
    return person.post_json(f"/api/parties/{party.code}/publish", {"published": published})


def published_events(party):
    return [e.payload for e in Event.objects.filter(party=party, type="party.published")]


@pytest.fixture
def rendered(party, pm, member):
    """Two prompts' images: Bob's refinement has two, the second of which has the most votes."""
    root, first = party.submit_prompt(pm, "loneliness", params={**SMALL, "seed": 1})
    _, second = party.submit_prompt(member, "an empty chair", root.pk, {**SMALL, "count": 2})
    for render in (first, second):
        run_render(render.pk)
    best = Image.objects.get(render=second, index=1)
    best.vote(pm, 1)
    best.vote(member, 1)
    return {"first": Image.objects.get(render=first), "best": best}


# --- Who may publish --------------------------------------------------------------------------


def test_it_lets_the_prompt_master_publish_and_unpublish(party, host, pm):
    response = publish(host, party, True)
    assert response.status_code == 200
    body = response.json()
    assert body["published"] is True
    assert body["url"] == f"http://testserver/g/{party.code}/"
    party.refresh_from_db()
    assert party.published_at is not None
    assert body["published_at"] == party.published_at.isoformat()
    assert published_events(party) == [{"published": True, "by": pm.pk}]
    assert host.client.get(f"/api/parties/{party.code}").json()["published"] is True
    assert Client().get(f"/g/{party.code}/").status_code == 200

    response = publish(host, party, False)
    assert response.status_code == 200
    assert response.json() == {"published": False, "published_at": None, "url": None}
    party.refresh_from_db()
    assert party.published_at is None
    assert published_events(party) == [
        {"published": True, "by": pm.pk},
        {"published": False, "by": pm.pk},
    ]
    assert Client().get(f"/g/{party.code}/").status_code == 404
    assert host.client.get(f"/g/{party.code}/").status_code == 404


def test_it_archives_nothing_when_the_state_does_not_change(party, host, pm):
    publish(host, party, True)
    party.refresh_from_db()
    since = party.published_at
    assert publish(host, party, True).status_code == 200
    party.refresh_from_db()
    assert party.published_at == since, "publishing again keeps the first publication time"
    assert len(published_events(party)) == 1
    publish(host, party, False)
    assert publish(host, party, False).status_code == 200
    assert len(published_events(party)) == 2


def test_it_refuses_a_participant(party, guest):
    response = publish(guest, party, True)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    party.refresh_from_db()
    assert party.published_at is None
    assert published_events(party) == []


def test_it_refuses_a_participant_taking_it_down(party, host, guest):
    publish(host, party, True)
    response = publish(guest, party, False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    party.refresh_from_db()
    assert party.published_at is not None
    assert Client().get(f"/g/{party.code}/").status_code == 200


def test_it_refuses_the_art_expert(party, outsider, expert):
    response = publish(outsider, party, True)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("public", [False, True])
def test_it_refuses_an_outsider_even_of_a_public_party(party, outsider, public):
    party.public = public
    party.save(update_fields=["public"])
    response = publish(outsider, party, True)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"
    party.refresh_from_db()
    assert party.published_at is None
    assert not Member.objects.filter(party=party, session_key=outsider.session_key).exists()


def test_it_refuses_a_removed_member(party, host, guest, pm, member):
    pm.remove(member)
    response = publish(guest, party, True)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


def test_a_new_prompt_master_may_publish_and_the_old_one_not(party, host, guest, pm, member):
    pm.set_role(member, Member.Role.PROMPT_MASTER)
    assert publish(host, party, True).json()["error"]["code"] == "forbidden"
    assert publish(guest, party, True).status_code == 200


@pytest.mark.parametrize("body", [{}, {"published": "yes"}, {"published": 1}, {"published": None}])
def test_it_refuses_anything_but_a_boolean(party, host, body):
    response = host.post_json(f"/api/parties/{party.code}/publish", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_published"
    party.refresh_from_db()
    assert party.published_at is None


def test_it_answers_json_errors_for_other_methods_and_unknown_parties(party, host):
    response = host.client.get(f"/api/parties/{party.code}/publish")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    response = host.post_json("/api/parties/NOPE99/publish", {"published": True})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- The gallery ------------------------------------------------------------------------------


def test_the_gallery_is_a_404_until_published(party, host, rendered):
    assert Client().get(f"/g/{party.code}/").status_code == 404
    assert host.client.get(f"/g/{party.code}/").status_code == 404, "not even for the host"
    assert Client().get("/g/NOPE99/").status_code == 404


def test_the_gallery_shows_the_picks_first_with_their_notes(party, host, pm, rendered):
    first = rendered["first"]
    first.pick(pm, note="The loneliest chair of the night")
    publish(host, party, True)
    response = Client().get(f"/g/{party.code.lower()}/")  # codes are read in any case
    assert response.status_code == 200
    html = response.content.decode()
    page = Page(html)
    assert page.figures[0] == first.pk, "the pick comes first"
    assert set(page.figures) == set(Image.objects.filter(party=party).values_list("pk", flat=True))
    assert "The loneliest chair of the night" in html
    assert "picked by Ann, Prompt Master" in html
    assert first.file.url in page.images
    assert 'class="prompt-tree-svg"' in html, "the prompt tree"
    assert 'id="replay-data"' in html and "partyhub/replay.js" in html, "the timeline"
    assert "Ann published the party’s gallery" in html, "the server-rendered timeline"
    assert "Credits" in html and "an empty chair" in html


def test_the_gallery_has_open_graph_tags_for_sharing(party, host, pm, rendered):
    first = rendered["first"]
    first.pick(pm, note="Quiet, and it knows it")
    party.title = "Friday party"
    party.save(update_fields=["title"])
    publish(host, party, True)
    meta = Page(Client().get(f"/g/{party.code}/").content.decode()).meta
    assert meta["og:title"] == "Friday party"
    assert meta["og:type"] == "website"
    assert meta["og:url"] == f"http://testserver/g/{party.code}/"
    assert meta["og:image"] == f"http://testserver{first.file.url}", "the first pick, absolute"
    assert meta["og:image:alt"] == "loneliness"
    assert "loneliness" in meta["og:description"]
    assert "Quiet, and it knows it" in meta["og:description"]
    assert meta["twitter:card"] == "summary_large_image"
    assert meta["twitter:image"] == meta["og:image"]
    assert meta["twitter:title"] == "Friday party"


def test_open_graph_takes_the_best_voted_image_when_nothing_is_picked(party, host, rendered):
    publish(host, party, True)
    meta = Page(Client().get(f"/g/{party.code}/").content.decode()).meta
    assert meta["og:image"] == f"http://testserver{rendered['best'].file.url}"
    assert meta["og:title"] == "loneliness", "the topic when there is no title"


def test_open_graph_urls_use_the_public_url(settings, party, host, rendered):
    settings.PARTYHUB_PUBLIC_URL = "https://party.example.org"
    publish(host, party, True)
    meta = Page(Client().get(f"/g/{party.code}/").content.decode()).meta
    assert meta["og:url"] == f"https://party.example.org/g/{party.code}/"
    assert meta["og:image"] == f"https://party.example.org{rendered['best'].file.url}"


def test_a_gallery_with_no_images_shares_a_summary_card(party, host):
    publish(host, party, True)
    html = Client().get(f"/g/{party.code}/").content.decode()
    meta = Page(html).meta
    assert "og:image" not in meta
    assert meta["twitter:card"] == "summary"
    assert "Nothing was picked at this party." in html


def test_the_gallery_leaves_out_images_a_moderator_hid(party, host, rendered):
    hidden = rendered["best"]
    Image.objects.filter(pk=hidden.pk).update(hidden=True)
    publish(host, party, True)
    page = Page(Client().get(f"/g/{party.code}/").content.decode())
    assert hidden.pk not in page.figures
    assert hidden.file.url not in page.images
    assert page.meta["og:image"] != f"http://testserver{hidden.file.url}"


def test_the_gallery_escapes_what_people_wrote(party, host, pm):
    _, render = party.submit_prompt(pm, "<script>alert(1)</script>", params=SMALL)
    run_render(render.pk)
    Image.objects.get(render=render).pick(pm, note='"><img src=x onerror=alert(1)>')
    publish(host, party, True)
    html = Client().get(f"/g/{party.code}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert" in html


def test_an_unpublished_or_unknown_gallery_is_a_page_that_says_so(party):
    """Not Django's 404 page, whatever DEBUG says: a page naming the reason (issue 18)."""
    unpublished = Client().get(f"/g/{party.code}/")
    assert unpublished.status_code == 404
    assert b"This gallery is not published" in unpublished.content
    assert f'href="/p/{party.code}/"'.encode() in unpublished.content
    unknown = Client().get("/g/ZZZZZZ/")
    assert unknown.status_code == 404 and b"No party has the code" in unknown.content
