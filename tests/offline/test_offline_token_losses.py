"""The token model's losses: what keeps the tokenizer's capacity for the shapes
(../shared/offline-findings.md §3: the flat-background loss and foreground reseeding,
offline/train_vq.py), and the transformer's cross-entropy over the image tokens
(offline/train_ar.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from offline import autoregressive as A
from offline import train_ar, train_vq, training, world


def sampled(n: int, seed: int = 0) -> list[world.Scene]:
    rng = np.random.default_rng(seed)
    return [world.sample_scene(rng, "train") for _ in range(n)]


def drawn(scenes: list[world.Scene]) -> torch.Tensor:
    from offline import diffusion as D

    return A.drawn_cells(D.draw_batch(scenes, scale=1))


def test_the_drawn_cells_are_those_a_shape_touches_and_its_outline():
    scenes = sampled(200)
    cells = drawn(scenes).numpy()
    covered = np.stack([world.masks(s, A.GRID).max(0) for s in scenes])
    filled = np.array([s.style == "filled" for s in scenes])
    # A filled shape is drawn on every cell its silhouette covers a tenth of; an outlined one
    # leaves its inside as flat background, and its outline reaches a little past the silhouette.
    assert np.all(cells[filled][covered[filled] >= 0.1])
    beyond = cells & (covered == 0)
    assert not beyond[filled].any()
    assert beyond.mean() < 0.005
    assert 0.03 < cells.mean() < 0.3


def test_a_shape_over_a_corner_does_not_hide_the_background():
    pictures = np.zeros((1, world.SIZE, world.SIZE, 3), dtype=np.uint8)
    pictures[0, :4, :4] = 255  # drawn over the top-left corner's cell only
    cells = A.drawn_cells(pictures)[0]
    assert cells[0, 0] and cells.sum() == 1


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 100), st.integers(0, 2**31 - 1))
def test_background_spread_is_zero_for_one_output_per_background_whatever_the_scale(scale, seed):
    g = torch.Generator().manual_seed(seed)
    shapes = drawn(sampled(4, seed % 1000))
    h = torch.randn(4, 16, A.GRID, A.GRID, generator=g)
    spread = train_vq.background_spread(h, shapes)
    assert spread > 0.5  # noise everywhere: about all of the variance is spread
    assert torch.isclose(train_vq.background_spread(h * scale, shapes), spread, rtol=1e-4)
    # Each picture's background set to one vector of its own: nothing spread, shapes as they were.
    flat = torch.where(shapes.unsqueeze(1), h, torch.randn(4, 16, 1, 1, generator=g))
    assert train_vq.background_spread(flat * scale, shapes) < 1e-6


def test_unused_entries_are_moved_onto_outputs_where_a_shape_is():
    from diffusers import VQModel

    vq = VQModel(**A.VQ)
    shapes = drawn(sampled(8))
    h = torch.where(shapes.unsqueeze(1), 1.0, -1.0).expand(8, 16, A.GRID, A.GRID).clone()
    used = torch.zeros(A.CODES, dtype=torch.bool)
    used[:12] = True
    before = vq.quantize.embedding.weight.detach().clone()
    moved = train_vq.restart_unused(vq, used, h, shapes, torch.Generator().manual_seed(0))
    after = vq.quantize.embedding.weight.detach()
    assert moved == A.CODES - 12
    assert torch.equal(after[:12], before[:12])
    assert torch.all(after[12:] == 1.0)  # every one from a shape's cell, none from the background


def test_background_codes_counts_the_entries_a_flat_background_takes():
    shapes = drawn(sampled(2))
    codes = torch.zeros(2, A.GRID * A.GRID, dtype=torch.long)
    codes[0][~shapes[0].flatten()] = torch.arange(int((~shapes[0]).sum())) % 3
    codes[1][shapes[1].flatten()] = 7  # a shape's own entries do not count
    assert train_vq.background_codes(codes, shapes) == (3 + 1) / 2


def test_the_transformers_loss_is_each_image_tokens_cross_entropy_given_the_tokens_before():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt = GPT2LMHeadModel(
        GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=32)
    ).eval()
    prompt, codes = torch.randint(0, 10, (3, 4)), torch.randint(0, 30, (3, 20))
    with torch.no_grad():
        loss = train_ar.image_loss(gpt, prompt, codes, 10)
        # In the precision image_loss computes in here (bfloat16 where the CPU has it).
        with training.low_precision():
            logits = gpt(torch.cat([prompt, codes + 10], dim=1)).logits.float()
    # The logits at position 3 + j read the prompt and j codes, and predict code j; the text
    # vocabulary (10 ids) comes first.
    each = [
        torch.nn.functional.cross_entropy(logits[n, 3 + j], codes[n, j] + 10)
        for n in range(3)
        for j in range(20)
    ]
    assert torch.isclose(loss, torch.stack(each).mean())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, A.GRID * A.GRID - 1))
def test_where_an_outline_may_go_on_is_known_from_the_tokens_before(seed, changed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(A.CODES, (1, A.GRID * A.GRID), generator=g)
    shape = torch.rand(A.CODES, generator=g) < 0.3
    other = codes.clone()
    other[0, changed] = (
        codes[0, changed] + 1 + torch.randint(A.CODES - 1, (1,), generator=g)
    ) % A.CODES
    before, after = A.after_shape(codes, shape), A.after_shape(other, shape)
    # Changing a token changes nothing at or before it: a left-to-right model knows each weight
    # before it predicts the token, so the odds it learns stay the pictures' own.
    assert torch.equal(before[0, : changed + 1], after[0, : changed + 1])


def test_an_outline_goes_on_to_the_right_and_below_a_shapes_token():
    codes = torch.zeros(1, A.GRID, A.GRID, dtype=torch.long)
    codes[0, 3, A.GRID - 1] = 7  # the last of row 3: nothing to its right in the same row
    shape = torch.zeros(A.CODES, dtype=torch.bool)
    shape[7] = True
    marked = A.after_shape(codes.flatten(1), shape).view(A.GRID, A.GRID)
    assert marked.nonzero().tolist() == [[4, A.GRID - 1]]


def test_the_shape_entries_are_those_shapes_are_drawn_with():
    vq = A.load_vq()
    shape = A.shape_codes(*A.tokens_and_drawn(vq, sampled(300, seed=5)))
    codes, cells = A.tokens_and_drawn(vq, sampled(100, seed=6))
    assert shape[codes[cells]].float().mean() > 0.7  # 0.79 measured
    assert shape[codes[~cells]].float().mean() < 0.05


def test_a_weighted_loss_is_the_weighted_mean_of_each_tokens_cross_entropy():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2)).eval()
    prompt, codes = torch.randint(0, 10, (3, 4)), torch.randint(0, 30, (3, 20))
    weights = 1 + 3 * (torch.rand(3, 20) < 0.3)
    with torch.no_grad():
        plain = train_ar.image_loss(gpt, prompt, codes, 10)
        weighted = train_ar.image_loss(gpt, prompt, codes, 10, weights)
        same = train_ar.image_loss(gpt, prompt, codes, 10, torch.full((3, 20), 2.5))
        one = torch.zeros(3, 20)
        one[1, 7] = 1
        alone = train_ar.image_loss(gpt, prompt, codes, 10, one)
        logits = A.image_logits(gpt, prompt, codes, 10)
    each = torch.nn.functional.cross_entropy(logits.transpose(1, 2), codes + 10, reduction="none")
    assert weighted.item() == pytest.approx(
        ((each * weights).sum() / weights.sum()).item(), rel=1e-5
    )
    assert same.item() == pytest.approx(plain.item(), rel=1e-5)
    assert alone.item() == pytest.approx(each[1, 7].item(), rel=1e-5)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "heavy"])
def test_a_context_weight_is_a_finite_number_above_zero(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_ar.main(["--context-weight", value])
    assert exit_.value.code == 2
    assert "is not a finite number above 0" in capsys.readouterr().err
