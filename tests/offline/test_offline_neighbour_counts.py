"""The token models' baseline with nothing learnt (offline/neighbour_counts.py): counts of each
image token given its neighbours before it, read as a transformer's teacher-forced tokens."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offline import evaluate, world
from offline import neighbour_counts as N
from offline.autoregressive import CODES, GRID


@settings(max_examples=50, deadline=None)
@given(arrays(np.int64, (2, GRID * GRID), elements=st.integers(0, CODES - 1)))
def test_each_context_holds_the_kind_and_the_neighbours_before_the_token(codes):
    rows = N.contexts(codes, np.array([5, 7])).reshape(2, GRID, GRID, -1)
    for n, r, c in itertools.product(range(2), range(GRID), range(GRID)):
        expected = [
            codes[n, (r + dr) * GRID + c + dc]
            if 0 <= r + dr < GRID and 0 <= c + dc < GRID
            else N.OFF_GRID
            for dr, dc in N.NEIGHBOURS
        ]
        assert list(rows[n, r, c]) == [[5, 7][n], *expected]
    # Every neighbour comes before the token in reading order: a model read left to right may
    # see it.
    assert all(dr * GRID + dc < 0 for dr, dc in N.NEIGHBOURS)


def test_every_kind_of_caption_has_its_own_number():
    rng = np.random.default_rng(3)
    scenes = [world.sample_scene(rng, split) for _ in range(300) for split in ("train", "heldout")]

    def named(scene):
        return frozenset(s.shape for s in scene.shapes), len(scene.shapes), scene.style

    by_kind = {}
    for scene in scenes:
        by_kind.setdefault(N.kind(scene), set()).add(named(scene))
    assert all(len(v) == 1 for v in by_kind.values())
    assert len(by_kind) == len({named(scene) for scene in scenes})


def pictures(*rows: list[int]) -> np.ndarray:
    """Pictures whose first row is given and the rest code 0."""
    out = np.zeros((len(rows), GRID * GRID), np.int64)
    for n, row in enumerate(rows):
        out[n, : len(row)] = row
    return out


def test_the_token_seen_most_often_in_a_context_is_answered():
    # After "1 2" the pool has 3 three times and 4 once, then after "1 2 4" a 9.
    pool = pictures([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 4, 9])
    tables = N.fit(pool, np.zeros(4, int))
    asked = pictures([1, 2, 4, 9])
    answer = N.likeliest(tables, asked, np.zeros(1, int))
    assert list(answer[0, 2:4]) == [
        3,
        9,
    ]  # the third token read after "1 2", the fourth after "2 4"


def test_a_tie_goes_to_the_lowest_code():
    tables = N.fit(pictures([1, 8], [1, 6]), np.zeros(2, int))
    assert N.likeliest(tables, pictures([1, 8]), np.zeros(1, int))[0, 1] == 6


def test_a_context_never_seen_backs_off_to_fewer_neighbours_then_to_the_left_one():
    pool = pictures([1, 2, 3])
    tables = N.fit(pool, np.zeros(1, int))
    # Another kind of caption: the contexts with the kind are all new, the neighbours alone
    # (columns 1-4) are not.
    assert N.likeliest(tables, pictures([1, 2, 3]), np.ones(1, int))[0, 2] == 3
    # Codes never counted next to each other: every context is new, so the left one repeats.
    assert N.likeliest(tables, pictures([7, 5, 9]), np.zeros(1, int))[0, 2] == 5


def test_the_command_grades_the_counts_pictures(capsys):
    evaluate.main(["neighbours", "--pool", "20", "--n", "4"])
    out = capsys.readouterr().out
    assert "tokens right: with a shape drawn on" in out
    assert "neighbour counts over 20 pictures, teacher-forced, (4 held-out captions)" in out
