"""The losses that teach the offline diffusion model which words go where (offline.grounding)."""

import copy

import numpy as np
import pytest
import torch

from offline import diffusion as D
from offline import grounding as G
from offline import world


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return D.write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def scenes(n, seed=0, loose=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        scene = world.sample_scene(rng, "all")
        out.append(world.loosen(scene, rng, 0.4) if loose and rng.random() < 0.5 else scene)
    return out


def test_the_words_are_the_captions_tokens_one_for_one(tokenizer):
    for scene in scenes(600):
        ids = tokenizer(world.caption(scene)).input_ids[1:-1]
        read = [tokenizer.convert_ids_to_tokens(i).removesuffix("</w>") for i in ids]
        assert read == [word for word, _role in G.words(scene)]


def test_each_object_word_names_its_own_object():
    scene = world.parse("a small red circle below a large blue star on a green background, striped")
    roles = dict(G.words(scene))
    assert [roles[w] for w in ("small", "red", "circle")] == [G.FIRST] * 3
    assert [roles[w] for w in ("large", "blue", "star")] == [G.SECOND] * 3
    assert roles["green"] == G.BACKGROUND
    assert roles["below"] == roles["background"] == roles["striped"] == G.NOTHING
    two = dict(G.words(world.parse("two red hearts")))
    assert two["red"] == two["hearts"] == G.BOTH


def test_role_targets_ask_the_slot_in_picture_order_and_not_for_next_to():
    below = world.parse("a red circle below a blue star")
    targets = G.role_targets([below, world.parse("a red circle next to a blue star"), None], 24)
    # Tokens: start, a, red, circle, below, a, blue, star, end.
    assert targets["slot"][0, 2:8].tolist() == [1, 1, -1, -1, 0, 0]  # the star is on top
    red, blue = world.COLOUR_NAMES.index("red"), world.COLOUR_NAMES.index("blue")
    assert targets["colour"][0, 2:4].tolist() == [red, red]
    assert targets["colour"][0, 6:8].tolist() == [blue, blue]
    assert (targets["slot"][1] == -1).all() and (targets["colour"][1, 2:4] == red).all()
    assert all((t[2] == -1).all() for t in targets.values())


def test_a_scenes_masks_are_where_it_is_drawn():
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 60:
        scene = world.sample_scene(rng, "all")
        if scene.style != "filled":
            continue
        picture = np.asarray(world.draw(scene)).astype(int)
        background = np.median(picture.reshape(-1, 3), axis=0)
        drawn = np.abs(picture - background).sum(-1) > 60
        masks = world.masks(scene)
        assert masks.shape == (scene.count, world.SIZE, world.SIZE)
        assert ((masks.max(0) > 0.5) == drawn).mean() > 0.97
        for mask, shape in zip(masks, scene.shapes, strict=True):  # in caption order
            y, x = np.argwhere(mask > 0.5).mean(0) - world.SIZE / 2
            side = {"left": -x, "right": x, "top": -y, "bottom": y}.get(shape.position)
            assert side is None or side > 4
        checked += 1


def test_the_loss_is_nothing_when_each_word_looks_at_its_object_and_one_when_it_looks_away():
    masks = torch.zeros(1, 4, 4)
    masks[0, 0, :2] = 1  # the first object fills places 0 and 1
    masks[0, 3] = 1 - masks[0, 2]
    roles = torch.tensor([[G.NOTHING, G.FIRST]])
    on = torch.tensor([[[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]]])
    away = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]])
    assert G.grounding_loss(on, masks, roles).item() == pytest.approx(0.0)
    assert G.grounding_loss(away, masks, roles).item() == pytest.approx(1.0)
    assert G.grounding_loss(on, masks, torch.tensor([[G.NOTHING, G.NOTHING]])) is None


@pytest.fixture(scope="module")
def small_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        **{**D.UNET, "block_out_channels": [16, 32, 32], "norm_num_groups": 8}
    )


def test_training_on_the_grounding_loss_moves_each_words_attention_onto_its_object(small_unet):
    unet = copy.deepcopy(small_unet)
    grounding = G.CrossAttentionGrounding(unet)
    batch = [s for s in scenes(40, seed=2, loose=False) if s.count == 2][:8]
    masks = [G.scene_masks(s) for s in batch]
    masks = {res: torch.stack([m[res] for m in masks]) for res in G.RESOLUTIONS}
    roles = G.token_roles(batch, D.MAX_TOKENS)
    context = torch.randn(len(batch), D.MAX_TOKENS, D.TEXT["d_model"])
    latents, t = torch.randn(len(batch), 4, 16, 16), torch.full((len(batch),), 500)
    opt = torch.optim.Adam(unet.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        grounding.expect(masks, roles)
        unet(latents, t, context)
        loss = grounding.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # Between steps the hooks do nothing: a copy runs any batch, as the moving average's does.
    copy.deepcopy(unet)(latents[:1], t[:1], context[:1])
    assert grounding.loss().item() == 0.0
