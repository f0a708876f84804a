"""Where an image came from: the prompt's lineage and the provenance every PNG carries.

No Django imports: the render runner passes Prompt rows, the export its own lookups.
"""


def lineage(prompt, parent_of):
    """`prompt` and its ancestors, root first.

    parent_of(node) is the node's parent, or None at the root (or where the lookup ends): e.g.
    `lambda p: p.parent` over Prompt rows, `lambda p: prompt_by_id.get(p.parent_id)` over a dict.
    """
    chain = []
    while prompt is not None:
        chain.append(prompt)
        prompt = parent_of(prompt)
    return chain[::-1]


def provenance(*, party_code, render_id, lineage, author_of, votes=0):
    """The JSON that each PNG's `partyhub` tEXt chunk carries (see generation/pngmeta.py).

    lineage: the rendered prompt and its ancestors, root first, as `lineage()` gives them (the
    last is the rendered prompt); author_of(prompt) is the name of that prompt's author. votes:
    0 when the render stores its files; the export writes the votes as they are then.
    """
    return {
        "party": party_code,
        "render": render_id,
        "prompt": lineage[-1].pk,
        "lineage": [prompt.pk for prompt in lineage],
        "authors": [author_of(prompt) for prompt in lineage],
        "votes": votes,
    }


def best_of_note(params, index):
    """What the `partyhub` chunk of a best-of render's image adds: of how many candidates it
    was one (`best_of`), its `rank` by CLIP score against the prompt (1: the best; the render
    stores its candidates best first, so its index plus one) and whether it was `kept`. Nothing
    for the images of other renders. The `parameters` chunk has no such field: A1111 has none,
    and each image's own seed there renders it again alone."""
    best_of = params.get("best_of")
    if not best_of:
        return {}
    return {"best_of": best_of, "rank": index + 1, "kept": index < params["count"]}
