"""The masked token model (offline/masked.py: MaskGIT's design over the autoregressive model's
image tokens, the second token design compared in docs/models.md): its masks and schedule, its
loss, a small one learning pictures by heart, and the folder its trainer writes."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, train_masked, world
from offline import masked as M


def four_pictures():
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(A.WEIGHTS / "tokenizer", local_files_only=True)
    rng = np.random.default_rng(0)
    scenes = [world.sample_scene(rng, "train") for _ in range(4)]
    texts = [world.caption(scene) for scene in scenes]
    return tokenizer, texts, A.encode(A.load_vq(), D.draw_batch(scenes, scale=1))


def small_bert(text_vocab: int):
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(M.bert_config(text_vocab, width=64, layers=2))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.integers(0, 2**31 - 1))
def test_every_picture_has_from_one_token_to_all_masked(n, seed):
    masks = M.random_masks(n, torch.Generator().manual_seed(seed))
    assert masks.shape == (n, M.IMAGE_TOKENS) and masks.dtype == torch.bool
    counts = masks.sum(1)
    assert counts.min() >= 1 and counts.max() <= M.IMAGE_TOKENS


def test_the_share_masked_follows_the_cosine_schedule():
    shares = M.random_masks(4000, torch.Generator().manual_seed(0)).float().mean(1)
    # cos(π/2·u) for u uniform: mean 2/π, and below a half a third of the time (u > 2/3).
    assert abs(shares.mean() - 2 / np.pi) < 0.02
    assert abs((shares < 0.5).float().mean() - 1 / 3) < 0.03


@given(st.integers(1, 64))
def test_the_rounds_unmask_fewer_each_time_and_all_by_the_last(rounds):
    left = [M.still_masked(r, rounds) for r in range(rounds)]
    assert left[-1] == 0
    assert all(a >= b for a, b in zip([M.IMAGE_TOKENS, *left], left, strict=False))


def test_the_loss_is_the_cross_entropy_of_the_masked_tokens_alone():
    tokenizer, texts, codes = four_pictures()
    vocab = len(tokenizer)
    bert = small_bert(vocab).eval()
    captions = A.caption_ids(tokenizer, texts)
    masks = M.random_masks(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss = M.masked_loss(bert, captions, codes, vocab, masks)
        ids = torch.where(masks, M.mask_id(vocab), codes + vocab)
        logits = M.code_logits(bert, captions, ids, vocab)
        # What a masked token is never reaches the transformer: it is only what it is asked for.
        other = torch.where(masks, (codes + 1) % A.CODES, codes)
        assert not torch.equal(loss, M.masked_loss(bert, captions, other, vocab, masks))
        again = torch.where(masks, M.mask_id(vocab), other + vocab)
        assert torch.equal(M.code_logits(bert, captions, again, vocab), logits)
    each = [
        torch.nn.functional.cross_entropy(logits[n, j], codes[n, j])
        for n in range(4)
        for j in range(M.IMAGE_TOKENS)
        if masks[n, j]
    ]
    assert torch.isclose(loss, torch.stack(each).mean())


def test_a_small_transformer_learns_four_pictures_by_heart():
    """The check the GPT has (test_a_small_gpt_learns_four_pictures_by_heart), for this design:
    trained by its own loss on four captions' pictures, with every token masked it must tell
    each picture's tokens in one pass (caption, token types, positions, the codebook's offset),
    and ``M.sample``'s rounds must give each picture back whole."""
    tokenizer, texts, codes = four_pictures()
    vocab = len(tokenizer)
    bert = small_bert(vocab)
    captions = A.caption_ids(tokenizer, texts)
    optimiser = torch.optim.Adam(bert.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        loss = M.masked_loss(bert, captions, codes, vocab, M.random_masks(4, g))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    bert.eval()
    with torch.no_grad():
        masked = torch.full_like(codes, M.mask_id(vocab))
        assert torch.equal(M.code_logits(bert, captions, masked, vocab).argmax(-1), codes)
    model = M.Model(bert, A.load_vq(), tokenizer)
    assert torch.equal(M.sample(model, texts, seed=0, guidance=1.0), codes)


def test_training_writes_a_folder_that_loads_and_draws(tmp_path, capsys):
    common = ["--out", str(tmp_path), "--threads", "1", "--batch-size", "4", "--pool", "8"]
    small = ["--width", "64", "--layers", "2", "--curve", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_masked, "CURVE_CAPTIONS", 2)
        train_masked.main(["--steps", "2", "--eval", "2", *small, *common])
    train_masked.main(["--steps", "1", "--eval", "0", "--resume", *common])
    model = M.load(tmp_path)
    assert (model.bert.config.hidden_size, model.bert.config.num_hidden_layers) == (64, 2)
    record = json.loads((tmp_path / "training.json").read_text())
    bundled = json.loads((A.WEIGHTS / "training.json").read_text())
    assert record["vq"] == bundled["vq"]  # the GPT's tokens: the two designs write the same
    first = record["masked"]["resumed_from"]
    assert (record["masked"]["steps"], first["steps"]) == (1, 2)
    [point] = first["curve"]
    assert point == {"step": 2, **first["heldout"], "shapes_masked": point["shapes_masked"]}
    assert set(point["shapes_masked"]) == set(first["heldout"])
    pictures = M.draw(model, ["a red circle", ""], seed=3)
    assert pictures.shape == (2, world.SIZE, world.SIZE, 3) and pictures.dtype == np.uint8
    assert np.array_equal(pictures[1:], M.draw(model, [""], seed=4))
    evaluate.main(["masked", "--shapes-masked", "--n", "2", "--weights", str(tmp_path)])
    assert "masked, shapes filled in, (2 held-out captions)" in capsys.readouterr().out
