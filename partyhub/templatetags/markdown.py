"""`markdown_text`: what people wrote, as literal text in the export's post.md.

post.md is a draft for a blog engine, and most of them render Markdown with raw HTML allowed, so
a prompt, a name or a note written into it as it is would become markup there: `<script>` a
script, `[x](javascript:...)` a link, `# x` a heading, `*x*` emphasis. Every piece of text people
wrote goes into post.md through this filter (`{% load markdown %}`, `{{ text|markdown_text }}`);
what PartyHub itself writes there (the headings, the image paths inside the ZIP) does not.
"""

import re
import string
import unicodedata

from django import template

register = template.Library()

# `&`, `<` and `>` as entities: they stay text in an engine that reads HTML before Markdown too.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Backslash-escaped wherever they stand: they open or close emphasis, code spans, links and
# images, a heading's closing #s, GitHub's tables and strikethrough, and `{{`/`{%`, which Jekyll's
# Liquid and Hugo's shortcodes read before the Markdown (a backslash splits the pair for them).
_SYNTAX = re.compile(r"[&<>\\`*_\[\]{}#|~]")
# Characters that end a line somewhere (CommonMark: \n and \r; str.splitlines and other engines
# also \v, \f, \x1c-\x1e, \x85, U+2028, U+2029) and every other control character but the tab
# become spaces. Inside PartyHub's own line a line ending would let the rest start a block of its
# own (a heading, a list, the end of a blockquote), and two spaces before it make a <br>; the
# controls show as nothing in a page (most are not allowed in HTML). manifest.json keeps the text
# exactly as written.
_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# A text's start may be the start of a line (a name starts "Ann started with ..."; a note follows
# "> "), where `-`, `+`, `=`, `:` or `1.` begin a list, a rule, a setext heading or a definition:
# there a punctuation mark is escaped, and the `.` or `)` after leading digits.
_ORDERED = re.compile(r"\d{1,9}(?=[.)])")
# What turns text right to left: right-to-left letters and Arabic digits (their bidirectional
# classes), and the explicit direction controls (embeddings, overrides, isolates and their ends).
# Next to PartyHub's own words, a Hebrew name would carry the punctuation and digits after it
# (" (Prompt Master)", ": 3 prompts") into its own direction; an override left open, U+202E with
# no U+202C after it, would turn the rest of the line around; a stray end, U+2069, would close an
# isolate the line opened. A text holding any goes in an isolate of its own (FSI ... PDI, what
# <bdi> is in the pages), whose end closes all it opened.
_RIGHT_TO_LEFT = {"R", "AL", "AN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
_ISOLATE_STARTS, _ISOLATE_END, _FSI = "\u2066\u2067\u2068", "\u2069", "\u2068"


@register.filter
def markdown_text(value):
    """`value` as Markdown that a CommonMark renderer shows as exactly that text.

    Line breaks and control characters become spaces (see _BREAKS); everything else comes back
    character for character, and nothing in it becomes an element, an entity or a block. A text
    with right-to-left letters or direction controls in it comes in an isolate of its own (see
    _isolated).
    """
    text = _BREAKS.sub(" ", str(value))
    body = text.strip()
    if not body:
        return _references(text)
    start = len(text) - len(text.lstrip())
    lead, trail = text[:start], text[start + len(body) :]
    escaped = _SYNTAX.sub(lambda m: _ENTITIES.get(m[0]) or "\\" + m[0], body)
    ordered = _ORDERED.match(body)
    if ordered:
        escaped = ordered[0] + "\\" + escaped[len(ordered[0]) :]
    elif body[0] in string.punctuation and not _SYNTAX.match(body):
        escaped = "\\" + escaped
    return _isolated(_references(lead) + escaped + _references(trail))


def _isolated(text):
    """``text`` in an isolate that closes everything the text opens, when it holds right-to-left
    letters or direction controls; else as it is."""
    if not any(unicodedata.bidirectional(char) in _RIGHT_TO_LEFT for char in text):
        return text
    # An isolate end matches the nearest open start before it (UAX #9, BD9). The text's ends that
    # match none of its own starts each get a start in front, so that none of them ends the
    # isolate around it; the starts it leaves open get their ends after, before the isolate's.
    open_starts, stray_ends = 0, 0
    for char in text:
        if char in _ISOLATE_STARTS:
            open_starts += 1
        elif char == _ISOLATE_END and open_starts:
            open_starts -= 1
        elif char == _ISOLATE_END:
            stray_ends += 1
    return _FSI * (1 + stray_ends) + text + _ISOLATE_END * (1 + open_starts)


def _references(blank):
    # Blanks at either end as character references: as characters they would indent a line (four
    # spaces make a code block), be trimmed off a paragraph, or keep PartyHub's own `**...**`
    # around a name from closing.
    return "".join(f"&#{ord(char)};" for char in blank)
