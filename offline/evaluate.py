"""Evaluations of the offline model family: ``python -m offline.evaluate <what>``.

- ``judge``: the judge's accuracy per head on fresh drawn pictures of both splits.
- ``drawn``: the drawn pictures graded against their own captions by :func:`grade`, the
  ceiling any generator evaluation can reach (the judge's own error on exact pictures).
- ``sheet``: a contact sheet of sample pictures with their captions.
- ``clip``: the offline CLIP picks each drawn picture's caption among 10 (the true one and 9
  other scenes' captions; and, harder, 9 captions of its own scene with one thing changed).
- ``diffusion``, ``autoregressive``: the generator renders the held-out captions and
  :func:`grade` scores its pictures, in all and by kind of caption (:func:`report`; the
  clip-guided preset, whose optimiser is the app's, in ``generation/evaluate_clip_guided.py``).
- ``autoregressive --teacher-forced``: the token model's likeliest tokens given the true ones
  before each, decoded and graded: what it knows before sampling.
- ``masked``: the same for the masked token model (``offline.masked``, MaskGIT's design), and
  with ``--shapes-masked`` its pictures with the tokens of every shape masked and filled in
  one pass: what it knows of the outlines.
- ``neighbours``: what counts of each image token given its neighbours before it draw, read
  as the token model's teacher-forced figures are (``offline.neighbour_counts``): the baseline a
  transformer has to beat to have learnt more than which token sits beside which.
- ``tokens``: the token model's tokenizer's round trip of held-out pictures with a share of
  their shape tokens replaced (``--replaced``): how many a transformer may get wrong.
- ``themes``: how close the diffusion model's pictures on a stream's theme and off it are to
  the theme, by the CLIP: what the offline streams' picture thresholds are fitted to.

It is one piece: the grading every command shares (``grade``, ``report``, the held-out scenes)
and, after it, one command per model family, each a few lines over the family's own module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from offline import judge as J
from offline import world

EVAL_SEED = 20261123
WEIGHTS = Path(__file__).resolve().parent / "weights"


def heldout_scenes(n: int, seed: int = EVAL_SEED) -> list[world.Scene]:
    """The scenes generators are graded on: ``n`` held-out ones, the same every time."""
    rng = np.random.default_rng(seed)
    return [world.sample_scene(rng, "heldout") for _ in range(n)]


def heldout_captions(n: int, seed: int = EVAL_SEED) -> list[str]:
    """The captions generators are graded on: those of ``heldout_scenes``."""
    return [world.caption(scene) for scene in heldout_scenes(n, seed)]


def _swap(lab: dict[str, int]) -> dict[str, int]:
    out = dict(lab)
    for k in ("colour", "shape", "size", "position"):
        out[k], out[k + "2"] = lab[k + "2"], lab[k]
    return out


def grade(pred: dict[str, np.ndarray], prompts: list[str]) -> dict[str, float]:
    """How often pictures match what their prompts say, by the judge's predictions ``pred``.

    A picture matches on colour when every colour the prompt names is on the right object, on
    shape likewise, on position when a single shape sits where it was asked or a pair is laid out
    as asked ("next to": side by side, either way round), on count when it shows as many objects.
    Each rate is over the prompts that say something about it.

    ``bound`` is over pairs of two different objects ("a red star above a blue square"): both
    are there, each with its own colour and shape, laid out as asked, all in one reading of the
    picture. Colour and shape alone can each be right by a reading the other contradicts ("next
    to" either way round); bound asks that one order satisfy them all."""
    hits: dict[str, list[bool]] = {k: [] for k in ("colour", "shape", "position", "count", "bound")}
    for n, prompt in enumerate(prompts):
        desc = world.parse(prompt)
        got = {k: int(v[n]) for k, v in pred.items()}
        wanted = world.labels(desc)
        options = [wanted]
        if desc.relation == "next to":
            wanted["position"], wanted["position2"] = PLACE["left"], PLACE["right"]
            options = [wanted, _swap(wanted)]
        hits["count"].append(got["count"] == wanted["count"])
        for what, keys in (("colour", ("colour", "colour2")), ("shape", ("shape", "shape2"))):
            if desc.count == 2 or any(wanted[k] >= 0 for k in keys):
                hits[what].append(any(all(o[k] in (-1, got[k]) for k in keys) for o in options))
        if wanted["position"] >= 0:
            keys = ("position", "position2") if desc.count == 2 else ("position",)
            hits["position"].append(
                any(
                    all(got[k] == o[k] and got["count"] == o["count"] for k in keys)
                    for o in options
                )
            )
        if is_distinct_pair(desc):
            hits["bound"].append(
                any(
                    got["count"] == o["count"]
                    and all(o[k] in (-1, got[k]) for k in BOUND_KEYS)
                    # "next to": the objects may swap, the layout (left, right) may not.
                    and all(got[k] == wanted[k] for k in ("position", "position2"))
                    for o in options
                )
            )
    return {k: float(np.mean(v)) for k, v in hits.items() if v}


BOUND_KEYS = ("colour", "colour2", "shape", "shape2")


def is_distinct_pair(desc) -> bool:
    """A caption of two objects in a relation that differ in a colour or shape it names."""
    if desc.relation is None:
        return False
    first, second = desc.shapes
    return (first.colour, first.shape) != (second.colour, second.shape)


PLACE = {p: i for i, p in enumerate(world.PLACES)}


def contact_sheet(images: np.ndarray, captions: list[str], columns: int = 6, scale: int = 2):
    """The pictures enlarged ``scale`` times, each over its caption (wrapped), as one image."""
    cell, text_h = 64 * scale, 46
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (cell + 8) + 8, rows * (cell + text_h + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (img, text) in enumerate(zip(images, captions, strict=True)):
        x = 8 + (n % columns) * (cell + 8)
        y = 8 + (n // columns) * (cell + text_h + 8)
        sheet.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (x, y))
        line, lines = "", []
        for word in text.split():
            if draw.textlength(f"{line} {word}".strip()) > cell:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        draw.multiline_text((x, y + cell + 2), "\n".join(lines[:4]), fill="black", spacing=1)
    return sheet


def cmd_judge(args) -> None:
    model = J.load(args.weights)
    for split in ("heldout", "train"):
        images, _, labels = next(world.batches(EVAL_SEED + 1, args.n, split))
        acc = J.accuracy(model.predict(images), labels)
        print(f"{split:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()))


def cmd_drawn(args) -> None:
    model = J.load(args.weights)
    rng = np.random.default_rng(EVAL_SEED)
    scenes = [world.sample_scene(rng, "heldout") for _ in range(args.n)]
    images = np.stack([np.asarray(world.draw(s)) for s in scenes])
    rates = grade(model.predict(images), [world.caption(s) for s in scenes])
    print("drawn    " + "  ".join(f"{k} {v:.3f}" for k, v in rates.items()))


def cmd_sheet(args) -> None:
    images, captions, _ = next(world.batches(args.seed, args.n, args.split))
    contact_sheet(images, captions).save(args.out, optimize=True)
    print(f"wrote {args.out}")


def clip_candidates(scenes, rng, hard: bool, k: int = 10) -> list[list[str]]:
    """For each scene, its caption first and ``k - 1`` other captions: other scenes' captions
    from the same list (``hard=False``), or its own scene with one thing changed (``hard``)."""
    from offline.train_clip import perturb

    captions = [world.caption(s) for s in scenes]
    out = []
    for n, scene in enumerate(scenes):
        others: list[str] = []
        while len(others) < k - 1:
            if hard:
                text = world.caption(perturb(scene, rng))
            else:
                text = captions[int(rng.integers(len(captions)))]
            if text != captions[n] and text not in others:
                others.append(text)
        out.append([captions[n], *others])
    return out


def clip_top1(encode_images, encode_texts, images, candidates) -> float:
    """How often the first candidate ranks first; ``encode_*`` give normalised embeddings."""
    image_emb = encode_images(images)
    hits = []
    for n, texts in enumerate(candidates):
        hits.append(int(np.argmax(encode_texts(texts) @ image_emb[n])) == 0)
    return float(np.mean(hits))


def load_clip(folder: Path):
    """The offline CLIP through open_clip's own loading path: (model, preprocess, tokenizer)."""
    import open_clip

    from offline import train_clip

    config, checkpoint = train_clip.paths(folder)
    open_clip.add_model_config(config)
    model, _, preprocess = open_clip.create_model_and_transforms(
        train_clip.MODEL_NAME, pretrained=str(checkpoint)
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(train_clip.MODEL_NAME)


def normalised(x) -> np.ndarray:
    """CLIP embeddings (a torch tensor, one per row) scaled to length 1, as numpy."""
    return (x / x.norm(dim=-1, keepdim=True)).numpy()


def cmd_clip(args) -> None:

    model, preprocess, tokenizer = load_clip(args.weights)

    def encode_images(images):
        with torch.no_grad():
            return normalised(model.encode_image(torch.stack([preprocess(i) for i in images])))

    def encode_texts(texts):
        with torch.no_grad():
            return normalised(model.encode_text(tokenizer(texts)))

    for split, seed in (("heldout", EVAL_SEED), ("train", EVAL_SEED + 1)):
        # Held-out: the scenes of heldout_captions(n), so the captions are exactly those.
        rng = np.random.default_rng(seed)
        scenes = [world.sample_scene(rng, split) for _ in range(args.n)]
        images = [world.draw(s) for s in scenes]
        rates = {}
        for name, hard in (("among 10", False), ("among 10 one-change", True)):
            candidates = clip_candidates(scenes, np.random.default_rng(seed + 7), hard)
            rates[name] = clip_top1(encode_images, encode_texts, images, candidates)
        print(f"{split:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in rates.items()))


def render_diffusion(pipe, prompts, seed=0, steps=20, guidance=5.0, batch=25) -> np.ndarray:
    """The pipeline's pictures for ``prompts`` (picture n from seed ``seed + n``), uint8."""

    out = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        generators = [torch.Generator().manual_seed(seed + i + n) for n in range(len(chunk))]
        result = pipe(
            chunk,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="np",
        )
        out.append((result.images * 255).round().astype(np.uint8))
    return np.concatenate(out)


def grade_pictures(images: np.ndarray, prompts: list[str]) -> dict[str, float]:
    """:func:`grade` of 64×64 pictures as the judge reads them."""
    return grade(J.load().predict(images), prompts)


def diffusion_scores(pipe, prompts, **render_options) -> dict[str, float]:
    """:func:`grade` of the pipeline's pictures for ``prompts``, seen at the judge's 64×64."""
    from offline import diffusion as D

    return grade_pictures(D.to_judge(render_diffusion(pipe, prompts, **render_options)), prompts)


def load_diffusion(folder: Path):
    """The pipeline as the app loads it on a CPU: float32 (the weights are stored in float16)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        folder, dtype=torch.float32, local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def kind(prompt: str) -> str:
    """What a caption asks for: one shape, two of the same, or a pair of two different ones."""
    desc = world.parse(prompt)
    return "one shape" if desc.count == 1 else "two of one" if desc.relation is None else "a pair"


def report(name: str, images: np.ndarray, prompts: list[str], args) -> None:
    """Print :func:`grade` of ``images`` for ``prompts``, in all and by kind of caption; with
    ``args.sheet``, also save the first 24 pictures there."""
    pred = J.load().predict(images)

    def line(label, rows):
        rates = grade({k: v[rows] for k, v in pred.items()}, [prompts[i] for i in rows])
        print(f"{label} " + "  ".join(f"{k} {v:.3f}" for k, v in rates.items()))

    line(f"{name} ({len(prompts)} held-out captions)", np.arange(len(prompts)))
    for which in ("one shape", "two of one", "a pair"):
        rows = np.array([i for i, p in enumerate(prompts) if kind(p) == which])
        if len(rows):
            line(f"  {which:10s} ({len(rows):3d})", rows)
    if args.sheet:
        contact_sheet(images[:24], prompts[:24]).save(args.sheet, optimize=True)
        print(f"wrote {args.sheet}")


def cmd_diffusion(args) -> None:
    from offline import diffusion as D

    pipe = load_diffusion(args.weights)
    prompts = heldout_captions(args.n)
    images = render_diffusion(pipe, prompts, steps=args.steps, guidance=args.guidance)
    report(
        f"diffusion, {args.steps} steps, guidance {args.guidance},",
        D.to_judge(images),
        prompts,
        args,
    )


def topic_similarities(pipe, clip, topic: str, prompts: list[str]) -> np.ndarray:
    """How close each of the pipeline's pictures for ``prompts`` is to ``topic`` by the CLIP: the
    cosine similarity a stream compares with its ``min_image_topic_score``."""

    model, preprocess, tokenizer = clip
    images = render_diffusion(pipe, prompts)
    with torch.no_grad():
        pictures = model.encode_image(torch.stack([preprocess(Image.fromarray(i)) for i in images]))
        text = model.encode_text(tokenizer([topic]))
    return normalised(pictures) @ normalised(text)[0]


def cmd_themes(args) -> None:
    """For each theme, the diffusion model's pictures of ``n`` captions on it (every shape fits)
    and ``n`` off it (no shape does): their similarity to the theme, quantiles 1% / 5% / 95%.
    What the offline streams' picture thresholds are fitted to."""
    pipe, clip = load_diffusion(args.weights), load_clip(args.clip)
    for theme in args.themes:
        rng = np.random.default_rng(args.seed)
        on: list[str] = []
        off: list[str] = []
        while len(on) < args.n or len(off) < args.n:
            scene = world.sample_scene(rng, "all")
            if world.on_theme(scene, theme):
                side = on
            elif not any(world.THEMES[theme](s) for s in scene.shapes):
                side = off
            else:
                continue
            if len(side) < args.n:
                side.append(world.caption(scene))
        for name, prompts in (("on", on), ("off", off)):
            q = np.quantile(topic_similarities(pipe, clip, theme, prompts), [0.01, 0.05, 0.95])
            print(f"{theme:18s} {name:3s} " + " / ".join(f"{v:.3f}" for v in q))


def cmd_autoregressive(args) -> None:
    from offline import autoregressive as A

    model = A.load(args.weights)
    if args.teacher_forced:
        scenes = heldout_scenes(args.n)
        prompts = [world.caption(scene) for scene in scenes]
        images = A.teacher_forced_pictures(model, scenes)
        report("autoregressive, teacher-forced,", images, prompts, args)
        return
    prompts = heldout_captions(args.n)
    images = A.draw(model, prompts, guidance=args.guidance)
    report(f"autoregressive, guidance {args.guidance},", images, prompts, args)


def cmd_masked(args) -> None:
    from offline import masked as M

    model = M.load(args.weights)
    if args.shapes_masked:
        scenes = heldout_scenes(args.n)
        prompts = [world.caption(scene) for scene in scenes]
        report("masked, shapes filled in,", M.filled_pictures(model, scenes), prompts, args)
        return
    prompts = heldout_captions(args.n)
    images = M.draw(model, prompts, guidance=args.guidance)
    report(f"masked, guidance {args.guidance},", images, prompts, args)


def cmd_tokens(args) -> None:
    from offline import autoregressive as A

    vq = A.load_vq(args.weights)
    scenes = heldout_scenes(args.n)
    prompts = [world.caption(scene) for scene in scenes]
    codes, shapes = A.tokens_and_drawn(vq, scenes)
    g = torch.Generator().manual_seed(0)
    for share in args.replaced:
        wrong = A.replace_shape_tokens(codes, shapes, share, g)
        report(f"tokens, {share:.0%} of shape tokens replaced,", A.decode(vq, wrong), prompts, args)


def cmd_neighbours(args) -> None:
    from offline import autoregressive as A
    from offline import neighbour_counts as N

    vq = A.load_vq(args.weights)
    rng = np.random.default_rng(args.seed)
    pool = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    tables = N.fit(A.encode_scenes(vq, pool).numpy(), np.array([N.kind(s) for s in pool]))
    scenes = heldout_scenes(args.n)
    codes, shapes = (t.numpy() for t in A.tokens_and_drawn(vq, scenes))
    likeliest = N.likeliest(tables, codes, np.array([N.kind(s) for s in scenes]))
    right = likeliest == codes
    print(f"tokens right: with a shape drawn on {right[shapes].mean():.3f}, ", end="")
    print(f"the others {right[~shapes].mean():.3f}")
    images = A.decode(vq, torch.from_numpy(likeliest))
    prompts = [world.caption(scene) for scene in scenes]
    report(f"neighbour counts over {args.pool} pictures, teacher-forced,", images, prompts, args)


COMMANDS = {
    "judge": cmd_judge,
    "drawn": cmd_drawn,
    "sheet": cmd_sheet,
    "clip": cmd_clip,
    "diffusion": cmd_diffusion,
    "autoregressive": cmd_autoregressive,
    "masked": cmd_masked,
    "neighbours": cmd_neighbours,
    "tokens": cmd_tokens,
    "themes": cmd_themes,
}


def count(text: str) -> int:
    """A number of captions or pictures from the command line: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("judge", "drawn"):
        p = sub.add_parser(name)
        p.add_argument("--n", type=count, default=2000)
        p.add_argument("--weights", type=Path, default=J.WEIGHTS)
    p = sub.add_parser("clip")
    p.add_argument("--n", type=count, default=200)
    p.add_argument("--weights", type=Path, default=WEIGHTS / "clip")
    p = sub.add_parser("diffusion")
    p.add_argument("--n", type=count, default=200)
    p.add_argument("--weights", type=Path, default=WEIGHTS / "diffusion")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--sheet", type=Path, help="also save the first 24 pictures here")
    known = {
        "autoregressive": "grade the likeliest tokens given the true ones before each",
        "masked": "grade the true pictures with their shapes' tokens masked and filled in one pass",
    }
    for name, help_ in known.items():
        p = sub.add_parser(name)
        p.add_argument("--n", type=count, default=200)
        p.add_argument("--weights", type=Path, default=WEIGHTS / name)
        p.add_argument("--guidance", type=float, default=3.0)
        flag = "--teacher-forced" if name == "autoregressive" else "--shapes-masked"
        p.add_argument(flag, action="store_true", help=help_ + ", not samples")
        p.add_argument("--sheet", type=Path, help="also save the first 24 pictures here")
    p = sub.add_parser("tokens")
    p.add_argument("--n", type=count, default=200)
    p.add_argument("--weights", type=Path, default=WEIGHTS / "autoregressive")
    p.add_argument(
        "--replaced", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.4, 0.8], metavar="SHARE"
    )
    p.add_argument("--sheet", type=Path, help="also save the first 24 pictures here")
    p = sub.add_parser("neighbours")
    p.add_argument("--n", type=count, default=200)
    p.add_argument("--pool", type=count, default=40_000, help="training pictures counted")
    p.add_argument("--seed", type=int, default=0, help="the pool's (train_ar's is 0)")
    p.add_argument("--weights", type=Path, default=WEIGHTS / "autoregressive")
    p.add_argument("--sheet", type=Path, help="also save the first 24 pictures here")
    p = sub.add_parser("themes")
    p.add_argument("--n", type=count, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, default=WEIGHTS / "diffusion")
    p.add_argument("--clip", type=Path, default=WEIGHTS / "clip")
    p.add_argument("themes", nargs="*", default=["circles and rings", "warm colours"])
    p = sub.add_parser("sheet")
    p.add_argument("--out", type=Path, default=Path("docs/world-samples.png"))
    p.add_argument("--n", type=count, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--split", default="all", choices=world.SPLITS)
    args = parser.parse_args(argv)
    COMMANDS[args.command](args)


if __name__ == "__main__":
    main()
