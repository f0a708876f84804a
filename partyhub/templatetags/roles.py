"""`{% role_titles %}`: Member.Role's labels for the browser, so they have one copy (the model's).

Pages that load static/partyhub/live.js put it before that script (`{% load roles %}`); live.js
reads the titles from it as `PartyHub.ROLE_TITLES`.
"""

from django import template
from django.utils.html import json_script

from partyhub.models import Member

register = template.Library()


@register.simple_tag
def role_titles():
    """A `<script id="role-titles" type="application/json">` of {role: title}, in Role's order."""
    return json_script(dict(Member.Role.choices), "role-titles")
