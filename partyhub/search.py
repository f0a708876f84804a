"""Search a party's images, or every published gallery's: by prompt words, author, seed and
model, and by meaning (the CLIP embedding of a text against the images' stored embeddings).

Only images of rendered (`submitted`) prompts that nobody hid are found. The filters are SQL:

- `q`: every word must occur in the prompt's text, case-insensitively, as a substring ("chair"
  also finds "armchairs" and "chairs"); the negative prompt is not searched. On SQLite only
  ASCII letters match case-insensitively (its LIKE); PostgreSQL folds every letter.
- `author`: the name of the prompt's author, whole and case-insensitive ("ann" finds Ann, not
  Joanne: people pick short names, and a part of one would mix people up).
- `seed`: exactly; `model`: the preset name exactly (also presets no longer configured).

Search by meaning ranks the filtered images that have an embedding by cosine similarity with
the text (both are L2-normalised, so a dot product). The text is encoded in this process (the
scorer's CLIP model, loaded on the first such search). The candidates' embeddings are read in
one query and compared in numpy, which is plenty for a party's hundreds to thousands of images:
over 10 000 ViT-B-32 embeddings (512 floats, 20 MB) numpy takes about 4 ms and reading them
from PostgreSQL about 155 ms (docs/performance.md, bench/search.py). Far more published images
would want a vector index (pgvector) instead of reading every embedding per search.
"""

import numpy as np

from core.errors import ApiError
from core.inbound import check_text, whole_number
from generation import scoring
from generation.params import MAX_SEED
from partyhub.models import Image, Prompt

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_TEXT = 200  # characters of q, author, model and like


def party_images(party):
    return Image.objects.filter(party=party)


def published_images():
    """The images of every party whose public gallery is published."""
    return Image.objects.filter(party__published_at__isnull=False)


def parse(params):
    """The search that request parameters (a QueryDict or dict of strings) ask for; ApiError
    names the first bad one. Nothing is clamped or guessed."""
    query = {
        "words": _text(params, "q").split(),
        "author": _text(params, "author"),
        "seed": _whole(params, "seed", "invalid_seed", 0, MAX_SEED),
        "model": _text(params, "model"),
        "like": _text(params, "like"),
        "limit": _whole(params, "limit", "invalid_limit", 1, MAX_LIMIT),
    }
    if query["limit"] is None:
        query["limit"] = DEFAULT_LIMIT
    if query["seed"] is None and not any(query[k] for k in ("words", "author", "model", "like")):
        raise ApiError("empty_query", "Search by words (q), author, seed, model or meaning (like).")
    return query


def search(images, query):
    """Results for a parsed `query` among `images` (a queryset of Image): the newest first, or
    the most similar first when searching by meaning (then `score` is the similarity)."""
    images = _filtered(images, query)
    if query["like"]:
        return ranked_results(images, query_vector(query["like"]), query["limit"])
    rows = _with_details(images).order_by("-created_at", "-pk")[: query["limit"]]
    return [result(row) for row in rows]


def query_vector(text):
    """The CLIP text embedding that search by meaning compares the images with."""
    vector = scoring.text_embedding(text)
    if vector is None:
        raise ApiError(
            "search_unavailable",
            "Search by meaning needs a CLIP model, and this server has none configured.",
            409,
        )
    return vector


def ranked_results(images, vector, limit):
    """Results for the `limit` images most similar to `vector`, the most similar first."""
    ranked = rank(images, vector, limit)
    rows = {row.pk: row for row in _with_details(images.filter(pk__in=[pk for pk, _ in ranked]))}
    # An image deleted or hidden between the two queries is left out.
    return [result(rows[pk], score) for pk, score in ranked if pk in rows]


def rank(images, vector, limit):
    """[(image id, cosine similarity)] of the `limit` images most similar to `vector`."""
    ids, blobs = [], []
    candidates = images.filter(embedding__isnull=False).order_by("-created_at", "-pk")
    for pk, blob in candidates.values_list("pk", "embedding"):
        # Embeddings of another CLIP model (another size) cannot be compared; skipped.
        if len(blob) == vector.nbytes:
            ids.append(pk)
            blobs.append(blob)
    if not ids:
        return []
    matrix = np.frombuffer(b"".join(blobs), dtype=scoring.EMBEDDING_DTYPE).reshape(len(ids), -1)
    similarities = matrix @ vector
    # Stable, so equally similar images stay newest first.
    best = np.argsort(-similarities, kind="stable")[:limit]
    return [(ids[i], float(similarities[i])) for i in best]


def result(image, score=None):
    prompt = image.render.prompt
    return {
        "id": image.pk,
        "party": image.party.code,
        "render": image.render_id,
        "url": image.file.url,
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "model": image.render.params.get("model"),
        "prompt": prompt.text,
        "author": prompt.author.name,
        "votes": image.vote_count,
        "picked": image.picked_at is not None,
        "score": score,
        "created_at": image.created_at.isoformat().replace("+00:00", "Z"),  # as events' `at`
    }


def _filtered(images, query):
    images = images.filter(hidden=False, render__prompt__status=Prompt.Status.SUBMITTED)
    for word in query["words"]:
        images = images.filter(render__prompt__text__icontains=word)
    if query["author"]:
        images = images.filter(render__prompt__author__name__iexact=query["author"])
    if query["seed"] is not None:
        images = images.filter(seed=query["seed"])
    if query["model"]:
        images = images.filter(render__params__model=query["model"])
    return images


def _with_details(images):
    return images.select_related("party", "render__prompt__author").with_votes()


def _text(params, field):
    value = check_text(params.get(field) or "")
    if len(value) > MAX_TEXT:
        raise ApiError("invalid_query", f"{field} must be at most {MAX_TEXT} characters.")
    return value.strip()


def _whole(params, field, code, low, high):
    """A whole number from low to high, or None when the parameter is absent or empty."""
    value = (params.get(field) or "").strip()
    if not value:
        return None
    number = whole_number(value, high)
    if number is None or number < low:
        raise ApiError(code, f"{field} must be a whole number from {low} to {high}.")
    return number
