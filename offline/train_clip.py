"""Train the offline CLIP: ``python -m offline.train_clip --out offline/weights/clip``.

A small open_clip model (``partyhub-offline-clip``: a ViT over 16×16 patches of the 64×64 world
pictures, and a text transformer over open_clip's own tokenizer), trained contrastively on
``split="train"`` scenes with full and loosened captions. Each picture also brings one hard
negative caption, its own scene with one thing changed (a colour, a shape, a place, the
relation, the background, the style or a size), so the model learns which colour goes with which
shape rather than only which words occur.

The output folder holds what the app's loading path wants (``generation.scoring.load_scorer``):
``<model-name>.json``, the config open_clip registers under its file name, and
``<model-name>.safetensors``, the state dict, which ``create_model_and_transforms(name,
pretrained=<file>)`` loads. Weights are stored as float16 to halve the file (most of it is
the 49,408-row token embedding); open_clip copies them into its float32 model.

Seeded and reproducible on one machine (same seed, same thread count → same weights).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from offline import training, world

MODEL_NAME = "partyhub-offline-clip"
WEIGHTS = Path(__file__).resolve().parent / "weights" / "clip"
CONFIG = {
    "embed_dim": 64,
    # 64×64 in 16×16 patches: 16 tokens, a 4×4 grid that still tells left from right. 8×8
    # patches cost twice the time per step on this CPU, which the time budget could not spare.
    "vision_cfg": {
        "image_size": 64,
        "patch_size": 16,
        "layers": 3,
        "width": 96,
        "head_width": 32,
        "mlp_ratio": 2.0,
    },
    # open_clip's tokenizer (vocab 49,408) keeps the app's loading path unchanged; a narrow width
    # keeps its embedding at 3.2M parameters. Captions are at most 19 tokens.
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
# open_clip's default normalisation (OpenAI's mean and std), which its preprocess applies.
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def paths(folder: Path, name: str = MODEL_NAME) -> tuple[Path, Path]:
    """(config JSON, checkpoint) in ``folder``."""
    folder = Path(folder)
    return folder / f"{name}.json", folder / f"{name}.safetensors"


def create(folder: Path, config: dict = CONFIG, name: str = MODEL_NAME):
    """A freshly initialised model of ``config``, built by open_clip from the config file it
    registers (written to ``folder``), so training and loading build the very same modules."""
    import open_clip

    config_path, _ = paths(folder, name)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    open_clip.add_model_config(config_path)
    return open_clip.create_model(name), open_clip.get_tokenizer(name)


def save(model, folder: Path, name: str = MODEL_NAME) -> Path:
    from safetensors.torch import save_file

    _, checkpoint = paths(folder, name)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, checkpoint)
    return checkpoint


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 N×64×64×3 → normalised float N×3×64×64, as open_clip's preprocess gives for a 64×64
    picture (its resize and crop leave that size alone)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x - MEAN) / STD


def pool(seed: int, n: int, split: str) -> tuple[np.ndarray, list[world.Scene]]:
    rng = np.random.default_rng(seed)
    scenes = [world.sample_scene(rng, split) for _ in range(n)]
    return np.stack([np.asarray(world.draw(s)) for s in scenes]), scenes


def _other(rng: np.random.Generator, options, value):
    choices = [o for o in options if o != value]
    return choices[int(rng.integers(len(choices)))]


def perturb(scene: world.Scene, rng: np.random.Generator) -> world.Scene:
    """The scene with one thing changed: a caption that is wrong in exactly one way."""
    shapes = list(scene.shapes)
    i = int(rng.integers(len(shapes)))
    kinds = ["colour", "shape", "size", "background", "style"]
    if scene.count == 1:
        kinds.append("position")
    elif scene.relation is not None:
        kinds += ["relation", "swap"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "colour":
        used = {s.colour for s in shapes} | {scene.background}
        new = _other(rng, [c for c in world.COLOUR_NAMES if c not in used], None)
        shapes = [
            replace(s, colour=new) if scene.relation is None or j == i else s
            for j, s in enumerate(shapes)
        ]
    elif kind == "shape":
        new = _other(rng, world.SHAPES, shapes[i].shape)
        shapes = [
            replace(s, shape=new) if scene.relation is None or j == i else s
            for j, s in enumerate(shapes)
        ]
    elif kind == "size":
        new = _other(rng, world.SIZES, shapes[i].size)
        shapes = [
            replace(s, size=new) if scene.relation is None or j == i else s
            for j, s in enumerate(shapes)
        ]
    elif kind == "position":
        shapes = [replace(shapes[0], position=_other(rng, world.PLACES, shapes[0].position))]
    elif kind == "relation":
        return replace(scene, relation=_other(rng, world.RELATIONS, scene.relation))
    elif kind == "swap":  # "a red star above a blue circle" → "a blue circle above a red star"
        a, b = shapes
        if (a.colour, a.shape, a.size) == (b.colour, b.shape, b.size):
            return replace(scene, relation=_other(rng, world.RELATIONS, scene.relation))
        shapes = [b, a]
    elif kind == "background":
        used = {s.colour for s in shapes} | {scene.background}
        new = _other(rng, [c for c in world.COLOUR_NAMES if c not in used], None)
        return replace(scene, background=new)
    else:
        return replace(scene, style=_other(rng, world.STYLES, scene.style))
    return replace(scene, shapes=tuple(shapes))


def step_captions(scenes, rng, loose: float) -> tuple[list[str], list[str], list[str]]:
    """Each scene's caption (loosened at random), its hard negative (full caption), and a short
    version of it (most words that may go, gone) for the text-to-text term."""
    positives, negatives, shorts = [], [], []
    for scene in scenes:
        said = world.loosen(scene, rng, loose) if loose > 0 and rng.random() < 0.5 else scene
        positives.append(world.caption(said))
        negatives.append(world.caption(perturb(scene, rng)))
        shorts.append(world.caption(world.loosen(scene, rng, SHORT)))
    return positives, negatives, shorts


SHORT = 0.7  # how many of the words that may go a short caption leaves out
TEXT_WEIGHT = 0.5  # of the text-to-text term
THEME_WEIGHT = 1.0  # of the theme term
# A picture or caption on a theme should be more similar to the theme's text than this, one off
# it less: the streams' topic thresholds sit near it.
THEME_MARGIN, THEME_SHARPNESS = 0.3, 10.0


def theme_targets(scenes) -> torch.Tensor:
    """[N, themes]: 1 where the scene is on the theme."""
    return torch.tensor([[world.on_theme(s, t) for t in world.THEMES] for s in scenes]).float()


def clip_loss(model, x, positives, negatives, shorts, themes, on_theme) -> torch.Tensor:
    """Symmetric InfoNCE over the batch, the image side also against the hard negatives; plus
    InfoNCE between each caption and its short version, so texts about the same things are
    close; plus, for pictures and captions alike, whether they are on each theme of the world
    (a sigmoid loss on their similarity to the theme's text). Streams compare a prompt with
    their topic text to text, and a picture with it: contrast between captions alone never
    teaches what "warm colours" means."""
    image = F.normalize(model.encode_image(x), dim=-1)
    texts = torch.cat([positives, negatives, shorts, themes])
    text = F.normalize(model.encode_text(texts), dim=-1)
    n = image.shape[0]
    scale = model.logit_scale.exp()
    logits = scale * image @ text[: 2 * n].T  # n × 2n
    target = torch.arange(n)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :n].T, target)) / 2
    pairs = scale * text[:n] @ text[2 * n : 3 * n].T
    text_loss = (F.cross_entropy(pairs, target) + F.cross_entropy(pairs.T, target)) / 2
    theme = text[3 * n :]
    theme_loss = sum(
        F.binary_cross_entropy_with_logits(
            THEME_SHARPNESS * (side @ theme.T - THEME_MARGIN), on_theme
        )
        for side in (image, text[:n])
    )
    return loss + TEXT_WEIGHT * text_loss + THEME_WEIGHT * theme_loss / 2


def train(
    model,
    tokenizer,
    steps: int,
    batch_size: int = 128,
    pool_size: int = 30_000,
    seed: int = 0,
    lr: float = 2e-3,
    loose: float = 0.3,
    log_every: int = 100,
):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    t0 = time.perf_counter()
    # One pool drawn up front (drawing inline would cost more than the model), captions written
    # afresh each step so a picture is seen with full and loosened captions and new negatives.
    images, scenes = pool(seed, pool_size, "train")
    images_t = pixels(images)
    print(f"drew {pool_size} pictures in {time.perf_counter() - t0:.1f}s", flush=True)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    order, at, running = torch.randperm(pool_size, generator=g), 0, 0.0
    model.train()
    for step in range(1, steps + 1):
        if at + batch_size > pool_size:
            order, at = torch.randperm(pool_size, generator=g), 0
        idx = order[at : at + batch_size]
        at += batch_size
        batch = [scenes[i] for i in idx.tolist()]
        captions = step_captions(batch, rng, loose)
        loss = clip_loss(
            model,
            images_t[idx],
            *(tokenizer(c) for c in captions),
            tokenizer(list(world.THEMES)),
            theme_targets(batch),
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # as in CLIP: a temperature of at most 1/100
            model.logit_scale.clamp_(0, np.log(100))
        running += loss.item()
        if step % log_every == 0 or step == steps:
            done = step % log_every or log_every
            print(
                f"step {step}/{steps} loss {running / done:.3f} "
                f"scale {model.logit_scale.exp().item():.1f} {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
            running = 0.0
    return model.eval()


def main(argv=None) -> None:
    parser = training.arguments(
        __doc__,
        out=WEIGHTS,
        steps=1500,
        batch_size=128,
        pool=30_000,
        seed=0,
        lr=1.5e-3,
        # One thread: the same weights on any machine, and on this busy 2-core machine a step
        # took 0.4 s with one thread against 0.8 s with two (the second only spins).
        threads=1,
    )
    args = parser.parse_args(argv)
    # Subnormals as when the weights in offline/weights/clip were trained, so that the same
    # seed still gives those weights; flushing them may change the last bits.
    run = training.Run(args, flush_denormal=False)
    model, tokenizer = create(args.out)
    model = train(model, tokenizer, args.steps, args.batch_size, args.pool, args.seed, args.lr)
    checkpoint = save(model, args.out)
    seconds, cpu_seconds = run.elapsed(), run.cpu_elapsed()
    print(
        f"trained in {seconds:.0f}s ({cpu_seconds:.0f} CPU seconds); saved {checkpoint} "
        f"({checkpoint.stat().st_size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
