"""The drawn world (offline.world) and the judge that grades the offline generators."""

import itertools

import numpy as np
import pytest
import torch

from offline import evaluate, train_judge, world
from offline import judge as J


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models: a second OpenMP thread on a busy machine spins and makes steps ~7× slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scenes(seed, n, split="train"):
    rng = np.random.default_rng(seed)
    return [world.sample_scene(rng, split) for _ in range(n)]


def test_it_is_deterministic_from_a_seed():
    a, b = scenes(5, 50), scenes(5, 50)
    assert a == b
    assert all(
        np.array_equal(np.asarray(world.draw(x)), np.asarray(world.draw(y)))
        for x, y in zip(a, b, strict=True)
    )
    assert scenes(6, 50) != a
    (i1, c1, l1), (i2, c2, l2) = next(world.batches(3, 32)), next(world.batches(3, 32))
    assert np.array_equal(i1, i2) and c1 == c2
    assert all(np.array_equal(l1[k], l2[k]) for k in world.HEADS)
    assert i1.dtype == np.uint8 and i1.shape == (32, 64, 64, 3)


def test_it_parses_every_caption_back():
    rng = np.random.default_rng(0)
    for split in world.SPLITS:
        for scene in scenes(1, 300, split):
            text = world.caption(scene)
            assert world.parse(text) == world.describe(scene), text
            loose = world.loosen(scene, rng, 0.5)
            assert world.parse(world.caption(loose)) == world.describe(loose)
            if scene.relation == "next to":
                continue  # says which two shapes, not which is on the left
            # What a caption says is what the picture shows, as far as it says it.
            said = world.labels(world.describe(scene))
            shown = world.labels(scene)
            assert all(v in (-1, shown[k]) for k, v in said.items()), text


def test_it_reads_what_people_type():
    scene = world.parse("A yellow star above a big green square, outlined.")
    assert scene.relation == "above" and scene.style == "outlined" and scene.background is None
    assert [(s.colour, s.shape, s.size, s.position) for s in scene.shapes] == [
        ("yellow", "star", None, "top"),
        ("green", "square", "large", "bottom"),
    ]
    two = world.parse("two small red circles on a blue background")
    assert two.count == 2 and two.relation is None and two.style == "filled"
    assert two.shapes[0] == world.Shape("circle", "red", "small", None) == two.shapes[1]
    assert world.parse("an orange heart in the center").shapes[0].position == "centre"
    assert world.parse("two crosses").shapes[0].shape == "cross"
    # "a star below a square": the square is on top, so it is object 1 for the judge.
    below = world.labels(world.parse("a red star below a blue square"))
    assert below["shape"] == world.SHAPES.index("square")
    assert below["shape2"] == world.SHAPES.index("star")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a red dog",
        "a purple circle on a purple background",
        "a red circle on the moon",
        "three red circles",
        "a red circle above",
        "a red circle, sparkly",
        "two red circle",
        "two red crosss",
    ],
)
def test_it_refuses_captions_outside_the_grammar(text):
    with pytest.raises(ValueError):
        world.parse(text)


def test_held_out_pairs_never_appear_in_training_scenes():
    pairs = lambda ss: {(s.colour, s.shape) for sc in ss for s in sc.shapes}  # noqa: E731
    train = pairs(scenes(2, 4000, "train"))
    assert not train & world.HELDOUT
    assert len(train) == len(world.COLOURS) * len(world.SHAPES) - len(world.HELDOUT)
    held = scenes(3, 500, "heldout")
    assert all(pairs([sc]) & world.HELDOUT for sc in held)
    assert pairs(held) >= world.HELDOUT
    # Every colour and every shape still appears in training, only not in those pairs.
    assert {c for c, _ in world.HELDOUT} == set(world.COLOURS)
    assert {s for _, s in world.HELDOUT} == set(world.SHAPES)


def test_colours_are_distinct_and_never_the_background():
    rgb = {k: np.array(v) for k, v in world.COLOURS.items()}
    for a, b in itertools.combinations(rgb, 2):
        # Far enough apart that the ±12 jitter per channel never brings two together.
        assert np.linalg.norm(rgb[a] - rgb[b]) > 80, (a, b)
    for scene in scenes(4, 2000, "all"):
        assert scene.background not in {s.colour for s in scene.shapes}


def test_the_vocabulary_covers_every_caption():
    vocab = set(world.vocabulary())
    for scene in scenes(8, 500, "all"):
        assert set(world.caption(scene).replace(",", " ,").split()) <= vocab


def test_the_committed_judge_reads_held_out_pictures():
    model = J.load()
    images, _, labels = next(world.batches(20261123, 200, "heldout"))
    acc = J.accuracy(model.predict(images), labels)
    assert acc["colour"] >= 0.97, acc
    assert acc["shape"] >= 0.95, acc
    assert acc["position"] >= 0.95, acc
    assert acc["count"] >= 0.95, acc
    # Meaning, not array shapes: a picture of a red circle on the left is read as such.
    scene = world.Scene((world.Shape("circle", "red", "large", "left"),), "blue", "filled", seed=1)
    pred = model.predict(np.asarray(world.draw(scene))[None])
    assert world.COLOUR_NAMES[pred["colour"][0]] == "red"
    assert world.SHAPES[pred["shape"][0]] == "circle"
    assert world.PLACES[pred["position"][0]] == "left"


def test_a_few_training_steps_learn_and_save(tmp_path):
    torch.manual_seed(0)
    images, labels = train_judge.pool(0, 32, "all")
    x = J.to_tensor(images)
    y = {k: torch.from_numpy(v) for k, v in labels.items()}
    model = J.Judge(widths=(8, 8, 8, 8), hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        batch_loss = J.loss(model(x), y)
        opt.zero_grad()
        batch_loss.backward()
        opt.step()
        losses.append(batch_loss.item())
    assert losses[-1] < 0.7 * losses[0]
    J.save(model, tmp_path / "judge")
    again = J.load(tmp_path / "judge")
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x)["shape"], again(x)["shape"])


def test_grade_scores_pictures_against_their_prompts():
    images, captions, labels = next(world.batches(11, 300, "heldout"))
    # The true labels as a perfect judge: every prompt is matched...
    assert evaluate.grade(labels, captions) == {
        "colour": 1.0,
        "shape": 1.0,
        "position": 1.0,
        "count": 1.0,
        "bound": 1.0,
    }
    # ...and other pictures' prompts mostly are not.
    wrong = evaluate.grade(labels, captions[1:] + captions[:1])
    assert wrong["colour"] < 0.3 and wrong["shape"] < 0.3 and wrong["position"] < 0.6
    # "next to" accepts either order, "left of" only one.
    pred = world.labels(world.parse("a red star left of a blue square"))
    pred = {k: np.array([v]) for k, v in pred.items()}
    assert evaluate.grade(pred, ["a blue square next to a red star"])["shape"] == 1.0
    assert evaluate.grade(pred, ["a blue square left of a red star"])["shape"] == 0.0
    # Position is the layout; which object sits where is in colour and shape.
    assert evaluate.grade(pred, ["a blue square left of a red star"])["position"] == 1.0
    assert evaluate.grade(pred, ["a blue square above a red star"])["position"] == 0.0
    assert evaluate.grade(pred, ["a red star at the top"])["count"] == 0.0
    # Bound: both objects, each with its own colour and shape, laid out as asked, in one reading.
    bound = {
        "a red star left of a blue square": 1.0,
        "a blue square right of a red star": 1.0,
        "a blue square next to a red star": 1.0,  # either way round
        "a red square left of a blue star": 0.0,  # colours on the right places, shapes swapped
        "a blue star left of a red square": 0.0,  # shapes right, colours swapped
        "a red star above a blue square": 0.0,  # the right objects, laid out otherwise
    }
    assert {text: evaluate.grade(pred, [text])["bound"] for text in bound} == bound
    # Only pairs of two different objects are graded for it.
    for text in ("two red stars", "a red star on the left"):
        assert "bound" not in evaluate.grade(pred, [text])


def test_the_judge_grades_drawn_pictures_as_matching():
    rng = np.random.default_rng(evaluate.EVAL_SEED)
    scenes = [world.sample_scene(rng, "heldout") for _ in range(200)]
    images = np.stack([np.asarray(world.draw(s)) for s in scenes])
    rates = evaluate.grade(J.load().predict(images), [world.caption(s) for s in scenes])
    assert rates["colour"] >= 0.95 and rates["shape"] >= 0.9 and rates["position"] >= 0.95, rates
