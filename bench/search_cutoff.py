"""Where search by meaning's cut-off for the bundled offline CLIP comes from
(`partyhub/search.py`, `MIN_SIMILARITY`; docs/models.md, "Search by meaning: the cut-off").

Searches the offline world the way a party does: texts a person might type, against pictures,
with the app's own loading path for the CLIP (`generation.scoring.load_scorer`). Two pools:

- drawn: `--drawn` scenes drawn exactly by `offline/world.py` (seed 1);
- rendered: the captions of `--rendered` scenes (seed 11) rendered by the bundled diffusion
  model at the app's defaults (128×128, 20 steps, guidance 5; picture n from seed n). A picture
  counts only where the judge (`offline/judge.py`) reads in it what its caption asked for, so a
  picture the model got wrong is neither a match nor a non-match.

The texts: "a <colour> <shape>" for every colour and shape, and each pool scene's caption, in
full and loosened (`world.loosen`, p 0.6). Each pair of a text and a picture falls in one class,
comparing what the text says with what the picture shows (places and relations are not compared:
the offline CLIP does not read them, docs/models.md):

- match: the things it names, as it names them (colour, shape, size), as many of them (one, two
  of a kind, a pair), on the background and in the style it says (unsaid style means filled);
- has them: those things are there, but the count, the background or the style differ;
- shares a word: some of its colours or shapes are there, not all ("a pink heart" for
  "a pink star");
- unrelated: none of its colours or shapes ("a red circle" for "a pink star");
- unknown words: texts of words the offline CLIP never learned (bench/search.py's prompt words,
  "an empty chair"), which search refuses (`unknown_words`) rather than rank.

Prints the quantiles of the cosine similarity per class and pool, how often each class passes
candidate cut-offs, and the cut-off this suggests: the highest of them that at least 99 matches
in 100 pass in every pool. A match below it is not lost: the search shows the nearest images
below the cut-off apart, labelled as not close; an unrelated picture above it would be shown as
a match.

    .venv/bin/python bench/search_cutoff.py                 # about 10 minutes on 2 cores
    .venv/bin/python bench/search_cutoff.py --rendered 0    # drawn pictures only, seconds
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("match", "has them", "shares a word", "unrelated", "unknown words")
CANDIDATES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55)
KEEP = 0.99  # of the matches, in every pool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawn", type=int, default=600)
    parser.add_argument("--rendered", type=int, default=240)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    from offline import world

    scorer = offline_clip()
    pools = {"drawn": drawn_pool(args.drawn)}
    if args.rendered:
        start = time.perf_counter()
        pools["rendered"] = rendered_pool(args.rendered)
        print(f"rendered {args.rendered} pictures in {time.perf_counter() - start:.0f} s")
    quantiles = (0.01, 0.05, 0.5, 0.95, 0.99)
    kept = set(CANDIDATES)
    for name, (scenes, pictures) in pools.items():
        embeddings, _ = scorer.score_images(pictures, ["-"])
        texts = sorted(queries(scenes, np.random.default_rng(3)))
        vectors = np.stack([scorer.text_vector(text) for text in texts])
        similarities = vectors @ embeddings.T  # texts × pictures
        by_class = {c: [] for c in CLASSES}
        for text, row in zip(texts, similarities, strict=True):
            asked = world.parse(text)
            for scene, similarity in zip(scenes, row, strict=True):
                by_class[relation(asked, scene)].append(float(similarity))
        unknown = np.stack([scorer.text_vector(text) for text in unknown_texts()])
        by_class["unknown words"] = (unknown @ embeddings.T).ravel().tolist()
        print(f"\n{name}: {len(pictures)} pictures, {len(texts)} texts")
        print(f"  {'':14s} {'pairs':>7s}  quantiles " + " ".join(f"{q:>5.0%}" for q in quantiles))
        for c in CLASSES:
            values = np.array(by_class[c])
            row = " ".join(f"{v:5.2f}" for v in np.quantile(values, quantiles))
            print(f"  {c:14s} {len(values):7d}            {row}")
        print(f"  {'passes':14s} " + " ".join(f"{t:>14.2f}" for t in CANDIDATES))
        for c in CLASSES:
            values = np.array(by_class[c])
            print(f"  {c:14s} " + " ".join(f"{np.mean(values >= t):14.3f}" for t in CANDIDATES))
        kept &= {t for t in CANDIDATES if np.mean(np.array(by_class["match"]) >= t) >= KEEP}
    print(f"\ncut-off: {max(kept, default=None)} (the highest that {KEEP:.0%} of matches pass)")


def offline_clip():
    from generation import scoring

    weights = REPO / "offline" / "weights" / "clip" / "partyhub-offline-clip"
    return scoring.load_scorer(
        weights.name, f"{weights}.safetensors", f"{weights}.json", "cpu", "float32"
    )


def drawn_pool(count):
    from offline import world

    rng = np.random.default_rng(1)
    scenes = [world.sample_scene(rng, "all") for _ in range(count)]
    return scenes, [world.draw(scene) for scene in scenes]


def rendered_pool(count):
    """The pictures whose judged content is what their caption asked, and those scenes."""
    from PIL import Image

    from offline import diffusion, evaluate, judge, world

    rng = np.random.default_rng(11)
    scenes = [world.sample_scene(rng, "all") for _ in range(count)]
    pipe = evaluate.load_diffusion(evaluate.WEIGHTS / "diffusion")
    pictures = evaluate.render_diffusion(pipe, [world.caption(s) for s in scenes], seed=0)
    read = judge.load().predict(diffusion.to_judge(pictures))
    kept = [n for n, scene in enumerate(scenes) if same(judged(read, n), scene)]
    print(f"rendered: the judge reads what was asked in {len(kept)} of {count} pictures")
    return [scenes[n] for n in kept], [Image.fromarray(pictures[n]) for n in kept]


def judged(read, n):
    """The scene the judge reads in picture n (no places)."""
    from offline import world

    got = {head: int(values[n]) for head, values in read.items()}

    def name(head):
        return world.label_names(head)[got[head]]

    shapes = [world.Shape(name("shape"), name("colour"), name("size"), None)]
    if got["count"] == 1:
        shapes.append(world.Shape(name("shape2"), name("colour2"), name("size2"), None))
    pair = len(shapes) == 2 and shapes[0] != shapes[1]
    return world.Scene(tuple(shapes), name("background"), name("style"), "pair" if pair else None)


def same(seen, scene):
    def things(s):
        return sorted((o.colour, o.shape, o.size) for o in s.shapes)

    return (
        things(seen) == things(scene)
        and (seen.background, seen.style) == (scene.background, scene.style)
        and (seen.relation is None) == (scene.relation is None)
    )


def queries(scenes, rng):
    from offline import world

    texts = {f"a {colour} {shape}" for colour in world.COLOUR_NAMES for shape in world.SHAPES}
    for scene in scenes:
        texts.add(world.caption(scene))
        texts.add(world.caption(world.loosen(scene, rng, 0.6)))
    return texts


def unknown_texts(count=200):
    """Texts of 1 to 6 of the words bench/search.py writes prompts with, none of the world's."""
    sys.path.insert(0, str(REPO / "bench"))
    from search import WORDS

    from offline import world

    words = sorted(set(WORDS) - set(world.vocabulary()))
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, int(rng.integers(1, 7)))) for _ in range(count)]


def relation(asked, scene):
    """Which class a picture of `scene` is in for a text that says `asked` (a parsed scene)."""

    def fits(want, got):
        return all(getattr(want, f) in (None, getattr(got, f)) for f in ("colour", "shape", "size"))

    there = all(any(fits(want, got) for got in scene.shapes) for want in asked.shapes)
    if (
        there
        and asked.count == scene.count
        and (asked.relation is None) == (scene.relation is None)
        and asked.background in (None, scene.background)
        and asked.style == scene.style
    ):
        return "match"
    if there:
        return "has them"
    words = {w for s in asked.shapes for w in (s.colour, s.shape)} - {None}
    shown = {w for s in scene.shapes for w in (s.colour, s.shape)}
    return "shares a word" if words & shown else "unrelated"


if __name__ == "__main__":
    main()
