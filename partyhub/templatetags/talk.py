"""`{% talk_rules %}`: what a chat line or a comment may be, and the reactions, for the browser, so
they have one copy (partyhub/models/talk.py's).

The party room puts it before its scripts (`{% load talk %}`); static/partyhub/party-chat.js
reads it, and counts a text against its limits before it is sent (the server still refuses what
breaks them), and party-threads.js shows the reactions in their order.
"""

from django import template
from django.utils.html import json_script

from partyhub.models.talk import MAX_LINES, MAX_TEXT, REACTIONS

register = template.Library()


@register.simple_tag
def talk_rules():
    """A `<script id="talk-rules" type="application/json">` of {"reactions": [[name, emoji], ...]
    in the order the room shows them, "max_text": characters, "max_lines": lines}."""
    rules = {"reactions": list(REACTIONS.items()), "max_text": MAX_TEXT, "max_lines": MAX_LINES}
    return json_script(rules, "talk-rules")
