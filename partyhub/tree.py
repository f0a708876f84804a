"""The prompt tree as an SVG: every prompt from the first word to the last refinement, each with
the words it added (highlighted) and removed (struck through) against its parent.

One drawing serves the party room (fetched and inlined, nodes clickable by `data-prompt`), the
public gallery and the export's index.html (opened from disk), so it carries its own styles and
never loads anything. The layout is an indented outline, one row per prompt in the order of a
depth-first walk: it reads top to bottom in a narrow side panel as well as on a wide page.

A sweep's cells hang under one row of their own, the sweep's group, labelled as the room's grid
card is ("Sweep · artist × seed", the words, "6 cells"). The drawing has every group open; the
room folds them (party-panels.js), moving rows by their `data-row` and the lines between them by
their `data-from` and `data-to`.
"""

import difflib
import re
import textwrap
from xml.sax.saxutils import escape, quoteattr

from django.db.models import F

from partyhub.models import Image
from partyhub.models.prompt import MODE_WORDS
from partyhub.sweep_grid import label

ROW_GAP = 10
INDENT = 18
PADDING = 8
LINE_HEIGHT = 16
CHAR_WIDTH = 6.6  # of the 12px sans-serif below, on average: wrapping needs no font metrics
THUMB = 44
MIN_WIDTH, MAX_WIDTH = 200, 2000

# Light by default (the export and gallery pages); a page sets the --pt-* properties to theme it.
STYLE = """
.pt-node rect.pt-box { fill: var(--pt-box, #fff); stroke: var(--pt-line, #c9c3d9); rx: 6px; }
.pt-node.pt-proposed rect.pt-box { stroke: var(--pt-accent, #7a5cff); stroke-dasharray: 4 3; }
.pt-node.pt-set_aside { opacity: .5; }
.pt-node.pt-link, svg.pt-clickable .pt-node { cursor: pointer; }
svg.pt-clickable .pt-node:hover rect.pt-box { stroke: var(--pt-accent, #7a5cff); stroke-width: 2; }
.pt-node text { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; }
.pt-node text { fill: var(--pt-text, #1d1b24); }
.pt-node tspan.pt-added { fill: var(--pt-added, #0a7a3d); font-weight: 700; }
.pt-node text.pt-removed { fill: var(--pt-removed, #b3261e); text-decoration: line-through; }
.pt-node text.pt-meta { fill: var(--pt-muted, #6b6780); font-size: 11px; }
.pt-node text.pt-sweep-label { fill: var(--pt-accent, #7a5cff); font-size: 11px; font-weight: 600; }
.pt-edge { fill: none; stroke: var(--pt-line, #c9c3d9); stroke-width: 1.5px; }
"""

_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = ".,;:!?\"'()[]{}“”‘’"


def word_diff(parent_text, child_text):
    """How `child_text` changed `parent_text`, word by word.

    Returns (tokens, removed): tokens are the child's words as (word, added) pairs in order,
    removed the parent's words the child dropped. Words compare without case or the punctuation
    around them, so "chair," and "Chair" are the same word.
    """
    child = _WORD.findall(child_text)
    if parent_text is None:
        return [(word, False) for word in child], []
    parent = _WORD.findall(parent_text)
    matcher = difflib.SequenceMatcher(
        a=[_comparable(word) for word in parent],
        b=[_comparable(word) for word in child],
        autojunk=False,
    )
    added = [True] * len(child)
    removed = []
    for op, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if op == "equal":
            added[b_start:b_end] = [False] * (b_end - b_start)
        if op in ("delete", "replace"):
            removed.extend(parent[a_start:a_end])
    return list(zip(child, added, strict=True)), removed


def _comparable(word):
    return word.strip(_EDGE_PUNCTUATION).lower()


def bare_word(word):
    """A word as prose quotes it: without the punctuation around it, unless that is all it is."""
    return word.strip(_EDGE_PUNCTUATION) or word


def tree_svg(prompts, images_by_prompt=None, link=None, width=360, authors=None, sweeps=None):
    """The SVG markup of the tree of `prompts` (dicts as Prompt.as_dict() gives them).

    images_by_prompt: {prompt id: [image URLs]}; the first is drawn as the node's thumbnail and
    the count is shown. link: a function of a prompt id returning an href that the node links
    to, or None; every node also carries data-prompt for scripts. authors: {member id: name}.
    sweeps: dicts as Sweep.as_dict() gives them; each one's cells hang under a group row (see
    above). Without them a cell is drawn as any prompt.
    """
    images_by_prompt = images_by_prompt or {}
    authors = authors or {}
    rows = list(_depth_first(prompts, sweeps or ()))
    parts, edges, y = [], [], 0
    top_of = {}
    for index, (item, depth, parent) in enumerate(rows):
        x = depth * INDENT
        if _is_group(item):
            item["rows_under"] = _subtree_size(rows, index)  # its meta says what folding hides
        node, height = _node(item, parent, (index, x, y), width, images_by_prompt, link, authors)
        top_of[_key(item)] = (x, y, index)
        if parent is not None:
            parent_x, parent_y, parent_index = top_of[_key(parent)]
            # An elbow from the parent's left edge down to the middle of this node's left side.
            elbow_x = parent_x + INDENT / 2
            edges.append(
                f'<path class="pt-edge" data-from="{parent_index}" data-to="{index}" '
                f'd="M{elbow_x:g},{parent_y + LINE_HEIGHT + 8:g} V{y + height / 2:g} H{x:g}"/>'
            )
        parts.append(node)
        y += height + ROW_GAP
    total = max(y - ROW_GAP, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="prompt-tree-svg" role="img" '
        f'aria-label="The prompt tree" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}"><style>{STYLE}</style>'
        + "".join(edges)
        + "".join(parts)
        + "</svg>"
    )


def _depth_first(prompts, sweeps=()):
    """(item, depth, parent) in reading order: each prompt followed by its refinements. An item
    is a prompt, or a sweep's group (a dict with its `cells`, see _groups) where the cells hang."""
    known = {prompt["id"] for prompt in prompts}
    groups = _groups(prompts, sweeps)
    children = {}
    for prompt in sorted(prompts, key=lambda p: p["id"]):
        group = groups.get(prompt.get("sweep"))
        parent = _key(group) if group else tree_parent(prompt, known)
        children.setdefault(parent, []).append(prompt)
    for group in groups.values():
        # A group sits where its first cell would: the cells share their parent.
        children.setdefault(tree_parent(group["cells"][0], known), []).append(group)
    for items in children.values():
        items.sort(key=_order)
    stack = [(item, 0, None) for item in reversed(children.get(None, []))]
    while stack:
        item, depth, parent = stack.pop()
        yield item, depth, parent
        below = children.get(_key(item), [])
        stack.extend((child, depth + 1, item) for child in reversed(below))


def _groups(prompts, sweeps):
    """{sweep id: its group}: the sweep, its text and its cells' prompts in the order written;
    a sweep none of whose cells is among `prompts` has none."""
    cells = {}
    for prompt in sorted(prompts, key=lambda p: p["id"]):
        if prompt.get("sweep") is not None:
            cells.setdefault(prompt["sweep"], []).append(prompt)
    return {
        sweep["id"]: {"sweep": sweep, "text": sweep["text"], "cells": cells[sweep["id"]]}
        for sweep in sweeps
        if sweep["id"] in cells
    }


def _key(item):
    """How the walk knows an item: a prompt by its id, a group by its sweep's."""
    return ("sweep", item["sweep"]["id"]) if _is_group(item) else item["id"]


def _order(item):
    """Siblings in the order written: a group where its first cell was."""
    return item["cells"][0]["id"] if _is_group(item) else item["id"]


def _subtree_size(rows, index):
    """How many rows hang under rows[index], at any depth: those after it, until one as shallow."""
    depth = rows[index][1]
    size = 0
    for _, below, _ in rows[index + 1 :]:
        if below <= depth:
            break
        size += 1
    return size


def tree_parent(prompt, known):
    """The id of the prompt a node hangs under in the tree, or None for a root: the prompt it
    refines, else the one whose image it started from ("Use"; absent in manifests before it)."""
    for key in ("parent", "source"):
        if prompt.get(key) in known:
            return prompt[key]
    return None


def _node(item, parent, at, width, images_by_prompt, link, authors):
    """A row's markup and its height. at: (its index among the rows, x, y)."""
    index, x, y = at
    group = _is_group(item)
    if group:
        # The group's thumbnail is its first cell's with an image; its cells have their own.
        images = [url for cell in item["cells"] for url in images_by_prompt.get(cell["id"], [])]
        meta = _group_meta(item, authors)
    else:
        images = images_by_prompt.get(item["id"], [])
        meta = _meta(item, len(images), authors, parent["sweep"] if _is_group(parent) else None)
    text_width = width - x - 2 * PADDING - (THUMB + PADDING if images else 0)
    columns = max(int(text_width / CHAR_WIDTH), 8)
    tokens, removed = word_diff(parent["text"] if parent else None, item["text"])
    lines = _wrap(tokens, columns)
    removed_lines = textwrap.wrap("− " + " ".join(removed), columns) if removed else []

    body, line_y = [], PADDING + 12
    if group:
        # The room puts ▸ or ▾ in the empty tspan, where a click opens or closes the group.
        body.append(
            f'<text class="pt-sweep-label" x="{PADDING}" y="{line_y}"><tspan class="pt-toggle">'
            f"</tspan>{escape(sweep_name(item['sweep']))}</text>"
        )
        line_y += LINE_HEIGHT
    for line in lines:
        spans = "".join(
            f'<tspan class="pt-added">{escape(word)}</tspan>{sep}'
            if added
            else f"{escape(word)}{sep}"
            for word, added, sep in line
        )
        body.append(f'<text x="{PADDING}" y="{line_y}">{spans}</text>')
        line_y += LINE_HEIGHT
    for line in removed_lines:
        body.append(f'<text class="pt-removed" x="{PADDING}" y="{line_y}">{escape(line)}</text>')
        line_y += LINE_HEIGHT
    body.append(f'<text class="pt-meta" x="{PADDING}" y="{line_y}">{escape(meta)}</text>')
    height = max(line_y + PADDING - 4, THUMB + 2 * PADDING if images else 0)
    box_width = width - x
    if images:
        body.append(
            f'<image href={quoteattr(images[0])} x="{box_width - THUMB - PADDING}" y="{PADDING}" '
            f'width="{THUMB}" height="{THUMB}" preserveAspectRatio="xMidYMid slice"/>'
        )
    if group:
        head = f'<g class="pt-node pt-sweep" data-sweep="{item["sweep"]["id"]}"'
    else:
        status = item.get("status", "submitted")
        classes = f"pt-node pt-{status}" + (" pt-link" if link else "")
        head = f'<g class="{classes}" data-prompt="{item["id"]}"'
    node = (
        f'{head} transform="translate({x},{y})" data-row="{index}">'
        f"<title>{escape(item['text'])}</title>"
        f'<rect class="pt-box" width="{box_width}" height="{height}"/>' + "".join(body) + "</g>"
    )
    if link and not group:
        node = f'<a href={quoteattr(link(item["id"]))} tabindex="0">{node}</a>'
    return node, height


def _is_group(item):
    return item is not None and "cells" in item


def sweep_name(sweep):
    """ "Sweep · artist × seed", as the room's grid card is labelled (sweeps.js's axesName)."""
    axes = [axis["axis"] for axis in (sweep["x"], sweep["y"]) if axis]
    return "Sweep · " + " × ".join(axes)


def cell_label(sweep, cell):
    """ "Hokusai · seed 2": the values of a cell (`[column, row]`, a prompt's `cell`) of `sweep`,
    as the grid's headers say them; "" for a cell the sweep does not have."""
    parts = []
    for axis, at in zip((sweep["x"], sweep["y"]), cell or (), strict=False):
        if axis and isinstance(at, int) and 0 <= at < len(axis["values"]):
            parts.append(label(axis["axis"], axis["values"][at]))
    return " · ".join(parts)


def _group_meta(group, authors):
    """ "Ann · 6 cells · 1 refinement": whose sweep, and what a closed group hides."""
    cells = len(group["cells"])
    refinements = group["rows_under"] - cells
    parts = [authors.get(group["sweep"].get("author"), ""), _count(cells, "cell")]
    if refinements > 0:
        parts.append(_count(refinements, "refinement"))
    return " · ".join(part for part in parts if part)


def _count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _wrap(tokens, columns):
    """Lines of (word, added, separator), at most `columns` characters each where words allow."""
    lines, line, length = [], [], 0
    for word, added in tokens:
        if line and length + 1 + len(word) > columns:
            lines.append(line)
            line, length = [], 0
        line.append((word, added, " "))
        length += len(word) + (1 if length else 0)
    if line:
        lines.append(line)
    return lines or [[("", False, "")]]


def _meta(prompt, image_count, authors, sweep=None):
    """ "Ann · redrawn · 2 images"; a sweep's cell names its values instead of its author (its
    group names them)."""
    mode = (prompt.get("params") or {}).get("mode")
    who = cell_label(sweep, prompt.get("cell")) if sweep else authors.get(prompt.get("author"), "")
    parts = [who, MODE_WORDS.get(mode)]
    status = prompt.get("status", "submitted")
    if status == "proposed":
        parts.append("proposed")
    elif status == "set_aside":
        parts.append("set aside")
    elif image_count:
        parts.append("1 image" if image_count == 1 else f"{image_count} images")
    return " · ".join(part for part in parts if part)


def party_tree_svg(party, width=360):
    """The tree of a party's prompts, each node with its best image (picked, then most voted)."""
    images = {}
    ranked = (
        Image.objects.filter(party=party, hidden=False)
        .with_votes()
        .select_related("render")
        .order_by(F("picked_at").asc(nulls_last=True), "-vote_count", "pk")
    )
    for image in ranked:
        images.setdefault(image.render.prompt_id, []).append(image.file.url)
    authors = dict(party.members.values_list("pk", "name"))
    prompts = [prompt.as_dict() for prompt in party.prompts.order_by("pk")]
    # What a group needs of a sweep, in one query: its cells are the prompts that name it.
    sweeps = party.sweeps.order_by("pk").values("id", "author", "text", "x", "y")
    return tree_svg(prompts, images, authors=authors, width=width, sweeps=sweeps)
