"""A baseline for the token models with nothing learnt: counts of which image token follows
which neighbours (``python -m offline.evaluate neighbours``).

For every token of a pool of pictures it counts the token given the six before it that lie
nearest on the grid (two to the left, two above, the two above diagonally) and what kind of
caption it is (``kind``: the shapes it names, how many, its style). Asked for a token, it
answers the one seen most often in that context, backing off to fewer neighbours where the
context was never seen. Read with the true tokens before each, as
``autoregressive.likeliest_tokens`` is, it shows what the local statistics of the tokens alone
can draw: a transformer whose teacher-forced pictures are no better has learnt no more about a
shape's outline than which token tends to sit beside which.
"""

from __future__ import annotations

import numpy as np

from offline import world
from offline.autoregressive import GRID

# (row, column) offsets of the neighbours counted, all before the token in reading order.
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0))
# The contexts tried in turn, as columns of ``contexts``' rows (0 is the caption's kind, 1-6
# the neighbours): the longest first, then fewer neighbours, then the neighbours alone.
BACKOFF = ((0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 3, 4), (0, 1, 2), (0, 1), (1, 2, 3, 4), (1, 2), (1,))
OFF_GRID = -1


def kind(scene: world.Scene) -> int:
    """The kinds of shape a caption names (a bit each), how many shapes (one or two) and its
    style, as one number."""
    named = sum(1 << world.SHAPES.index(shape) for shape in {s.shape for s in scene.shapes})
    return (named * 2 + len(scene.shapes) - 1) * len(world.STYLES) + world.STYLES.index(scene.style)


def contexts(codes: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """int32 [N * 256, 1 + len(NEIGHBOURS)]: each token's caption kind and its neighbours'
    codes (``OFF_GRID`` past the grid's edge), in reading order."""
    n = len(codes)
    padded = np.full((n, GRID + 4, GRID + 4), OFF_GRID, np.int32)
    padded[:, 2:-2, 2:-2] = codes.reshape(n, GRID, GRID)
    columns = [np.repeat(kinds.astype(np.int32), GRID * GRID)]
    for dr, dc in NEIGHBOURS:
        columns.append(padded[:, 2 + dr : 2 + dr + GRID, 2 + dc : 2 + dc + GRID].reshape(-1))
    return np.stack(columns, 1)


def _rows(a: np.ndarray) -> np.ndarray:
    """Each row of a 2-D array as one comparable value, for sorting and searching rows."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()


def fit(codes: np.ndarray, kinds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each context of ``BACKOFF``: the contexts seen (sorted) and the token seen most often
    in each (the lowest code where two tie). ``codes`` [N, 256], ``kinds`` [N]."""
    seen, targets = contexts(codes, kinds), codes.reshape(-1, 1).astype(np.int32)
    tables = []
    for columns in BACKOFF:
        pairs, counts = np.unique(_rows(np.hstack([seen[:, columns], targets])), return_counts=True)
        pairs = pairs.view(np.int32).reshape(len(pairs), len(columns) + 1)
        keys = _rows(pairs[:, :-1])
        group = np.cumsum(np.r_[True, keys[1:] != keys[:-1]])
        order = np.lexsort((pairs[:, -1], -counts, group))  # per context, most seen first
        first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
        tables.append((keys[first], pairs[first, -1]))
    return tables


def likeliest(tables, codes: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """[N, 256]: at each position the token ``fit``'s counts give the true neighbours before
    it, from the longest context seen; a token whose every context is new repeats its left
    neighbour."""
    asked = contexts(codes, kinds)
    out = np.full(len(asked), OFF_GRID, np.int64)
    for columns, (keys, best) in zip(BACKOFF, tables, strict=True):
        wanted = _rows(asked[:, columns])
        at = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
        found = (keys[at] == wanted) & (out == OFF_GRID)
        out[found] = best[at[found]]
    unseen = out == OFF_GRID
    out[unseen] = np.maximum(asked[unseen, 1], 0)
    return out.reshape(codes.shape)
