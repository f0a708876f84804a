"""The room page itself: what it carries for its scripts (the prompt's character limit, where a
CLIP score turns into words), and what a removed session sees instead of a join form."""

import json

import pytest
from django.conf import settings as django_settings

from generation.params import MAX_PROMPT_CHARS
from partyhub.score_words import CLIP_LEVELS, OFFLINE_CLIP_LEVELS

pytestmark = pytest.mark.django_db


def score_levels(html):
    tag = '<script id="score-levels" type="application/json">'
    start = html.index(tag) + len(tag)
    return json.loads(html[start : html.index("</script>", start)])


def test_it_carries_the_character_limit_and_the_score_words(party, guest, settings):
    settings.PARTYHUB_CLIP_PRETRAINED = "/weights/clip.safetensors"
    settings.PARTYHUB_CLIP_MODEL = django_settings.OFFLINE_CLIP.name
    html = guest.client.get(f"/p/{party.code}/").content.decode()
    assert f'data-max-prompt-chars="{MAX_PROMPT_CHARS}"' in html
    assert score_levels(html) == {k: list(v) for k, v in OFFLINE_CLIP_LEVELS.items()}

    settings.PARTYHUB_CLIP_MODEL = "ViT-B-32"
    html = guest.client.get(f"/p/{party.code}/").content.decode()
    assert score_levels(html) == {k: list(v) for k, v in CLIP_LEVELS.items()}

    settings.PARTYHUB_CLIP_PRETRAINED = ""  # no CLIP: no scores to put in words
    assert score_levels(guest.client.get(f"/p/{party.code}/").content.decode()) is None


def test_a_removed_session_is_told_so_instead_of_offered_to_join(party, pm, member, guest):
    pm.remove(member)
    html = guest.client.get(f"/p/{party.code}/").content.decode()
    assert "You were removed from this party" in html
    assert 'id="join-form"' not in html
    assert 'id="room"' not in html


def test_an_outsider_is_offered_to_join(party, outsider):
    html = outsider.client.get(f"/p/{party.code}/").content.decode()
    assert 'id="join-form"' in html
    assert "You were removed" not in html
