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
the text (both are L2-normalised, so a dot product), the most similar first; similarities equal
to 4 decimals count as a tie, and ties stay newest first. Only images at or above the CLIP
model's cut-off (`min_similarity`) are matches: a raw cosine means nothing by itself (every
image has one, and each model has its own scale: the bundled offline CLIP gives a picture of what
the text says 0.5 to 0.8, real CLIP models 0.2 to 0.35). Below it, the few nearest are given
apart (`nearest`), so a search that matches nothing says so and still shows what came closest.
The text is encoded in this process (the scorer's CLIP model, loaded on the first such
search). The candidates' embeddings are read in one query and compared in numpy, which is
plenty for a party's hundreds to thousands of images: over 10 000 ViT-B-32 embeddings (512
floats, 20 MB) numpy takes about 4 ms and reading them from PostgreSQL about 155 ms
(docs/performance.md, bench/search.py). Far more published images would want a vector index
(pgvector) instead of reading every embedding per search.
"""

import re

import numpy as np
from django.conf import settings

from core.errors import ApiError
from core.inbound import check_text, whole_number
from generation import scoring
from generation.params import MAX_SEED
from partyhub.models import Image, Prompt

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_TEXT = 200  # characters of q, author, model and like
NEAREST = 6  # images below the cut-off shown as the nearest, not as matches
TIE_DECIMALS = 4  # a picture embedded alone or in a batch differs by ~3e-8 (float32 sums)

# The cosine similarity from which an image matches a text, per CLIP model (PARTYHUB_CLIP_MODEL);
# PARTYHUB_SEARCH_MIN_SIMILARITY overrides it. Measured, not guessed: `bench/search_cutoff.py`
# searches 600 drawn and 206 rendered pictures of the offline world with the texts a person
# types ("a pink star", captions, loosened captions). 1 match in 100 is below 0.53 (drawn) and
# 0.49 (rendered); at 0.45, 99.9% and 99.6% of matches pass, and 0.8% and 1.4% of pictures that
# share no colour or shape with the text (docs/models.md, "Search by meaning: the cut-off").
# Retrain the offline CLIP, measure again. Other models have no measured cut-off here: all their
# images rank as matches until the setting gives one.
MIN_SIMILARITY = {scoring.OFFLINE_CLIP: 0.45}
# Words of a small CLIP's vocabulary that say nothing of what to look for by themselves.
FUNCTION_WORDS = frozenset({"a", "an", "the", "on", "in", "at", "of", "to", "next", "and"})


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
    """The answer to a parsed `query` among `images` (a queryset of Image): {"results",
    "nearest", "min_similarity", "unknown_words"}. By words, author, seed or model the results
    are the newest first. By meaning they are the matches, the most similar first (`score` is
    the similarity), `nearest` the most similar images below the cut-off while results has
    room, and `unknown_words` the words of the text the CLIP model never learned."""
    images = _filtered(images, query)
    if query["like"]:
        vector = query_vector(query["like"])
        unknown = unknown_words(query["like"])
        return {**ranked_results(images, vector, query["limit"]), "unknown_words": unknown}
    rows = _with_details(images).order_by("-created_at", "-pk")[: query["limit"]]
    return {
        "results": [result(row) for row in rows],
        "nearest": [],
        "min_similarity": None,
        "unknown_words": [],
    }


def query_vector(text):
    """The CLIP text embedding that search by meaning compares the images with."""
    counted = scoring.text_tokens(text)
    if counted is not None and counted[0] > counted[1]:
        count, limit = counted
        raise ApiError(
            "like_too_long",
            f"like is {count} tokens; the CLIP model reads at most {limit} (the rest would be "
            f"left out of the search). Shorten it by {count - limit}.",
        )
    vector = scoring.text_embedding(text)
    if vector is None:
        raise ApiError(
            "search_unavailable",
            "Search by meaning needs a CLIP model, and this server has none configured.",
            409,
        )
    return vector


def unknown_words(text):
    """The words of `text` the CLIP model never learned, in order ([] for a model that has read
    a language). ApiError when it knows none that says what to look for: its similarities to
    such a text are noise, as high for some pictures as a match's (docs/models.md)."""
    known = scoring.vocabulary()
    if known is None:
        return []
    words = re.findall(r"[a-z]+", text.lower())  # as the CLIP's tokenizer splits them
    if not any(word in known and word not in FUNCTION_WORDS for word in words):
        raise ApiError(
            "unknown_words",
            "The offline CLIP knows only the shapes, colours, sizes, places, backgrounds and "
            "styles of its world, such as “a pink star” or “two small blue squares on a white "
            "background”, and none of these words.",
        )
    return list(dict.fromkeys(word for word in words if word not in known))


def min_similarity():
    """The configured CLIP model's cut-off, or None when none is known (see MIN_SIMILARITY)."""
    if settings.PARTYHUB_SEARCH_MIN_SIMILARITY is not None:
        return settings.PARTYHUB_SEARCH_MIN_SIMILARITY
    return MIN_SIMILARITY.get(settings.PARTYHUB_CLIP_MODEL)


def ranked_results(images, vector, limit):
    """The answer for the images most similar to `vector` (see `rank`)."""
    cutoff = min_similarity()
    matches, nearest = rank(images, vector, limit, cutoff, NEAREST)
    wanted = [pk for pk, _ in matches + nearest]
    rows = {row.pk: row for row in _with_details(images.filter(pk__in=wanted))}
    # An image deleted or hidden between the two queries is left out.
    return {
        "results": [result(rows[pk], score) for pk, score in matches if pk in rows],
        "nearest": [result(rows[pk], score) for pk, score in nearest if pk in rows],
        "min_similarity": cutoff,
    }


def rank(images, vector, limit, cutoff=None, nearest=0):
    """([(image id, cosine similarity)] of up to `limit` images at or above `cutoff`, and of up
    to `nearest` below it while the first list leaves room under `limit`), each the most similar
    to `vector` first. Similarities equal to TIE_DECIMALS are a tie, newest first. Without a
    cutoff every image with a comparable embedding is a match."""
    ids, blobs = [], []
    candidates = images.filter(embedding__isnull=False).order_by("-created_at", "-pk")
    for pk, blob in candidates.values_list("pk", "embedding"):
        # Embeddings of another CLIP model (another size) cannot be compared; skipped.
        if len(blob) == vector.nbytes:
            ids.append(pk)
            blobs.append(blob)
    if not ids:
        return [], []
    matrix = np.frombuffer(b"".join(blobs), dtype=scoring.EMBEDDING_DTYPE).reshape(len(ids), -1)
    similarities = matrix @ vector
    # Stable, so ties stay newest first. Rounded, so that the same picture embedded alone and in
    # a batch (or rendered twice) is a tie, not ordered by float noise.
    order = np.argsort(-np.round(similarities, TIE_DECIMALS), kind="stable")
    passed = np.ones(len(ids), dtype=bool) if cutoff is None else similarities[order] >= cutoff
    matches = order[passed][:limit]
    below = order[~passed][: max(0, min(nearest, limit - len(matches)))]
    return (
        [(ids[i], float(similarities[i])) for i in matches],
        [(ids[i], float(similarities[i])) for i in below],
    )


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
