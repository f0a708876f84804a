"""A procedurally drawn world: 64×64 scenes of one or two shapes, and their captions.

Every model of the offline family (diffusion, CLIP, autoregressive) and the judge that grades
them is trained on this world, so it is the shared contract:

- ``sample_scene(rng, split)`` draws a random :class:`Scene` (deterministic for a given
  ``numpy.random.Generator`` state); ``draw(scene)`` renders it; ``caption(scene)`` describes it.
- ``parse(text)`` is the grammar's inverse: it reads a caption (or a looser prompt a person typed,
  with some words left out) back into a :class:`Scene` whose unknown fields are ``None``, and
  raises ``ValueError`` for anything outside the grammar.
- ``masks(scene, size)`` says where each shape lies, for losses that point words at their object.
- ``labels(scene)`` gives the per-object class indices the judge predicts; objects are ordered by
  place in the picture (top or left first), never by the order a caption names them, because a
  picture cannot tell "a star above a square" from "a square below a star".
- ``HELDOUT`` colour×shape pairs never occur in ``split="train"`` scenes; every ``"heldout"`` scene
  contains at least one of them.
- ``batches(...)`` yields ``(uint8 array N×64×64×3, captions, labels)`` for training.

The grammar (one style per scene, filled when unsaid)::

    caption  := objects " on a " COLOUR " background" [", " STYLE]
    objects  := one | pair | two
    one      := ART SIZE COLOUR SHAPE " " PLACE
    pair     := ART SIZE COLOUR SHAPE " " RELATION " " ART SIZE COLOUR SHAPE
    two      := "two " SIZE COLOUR SHAPE "s"
    PLACE    := "on the left" | "on the right" | "at the top" | "at the bottom" | "in the centre"
    RELATION := "above" | "below" | "left of" | "right of" | "next to"
    STYLE    := "outlined" | "striped"            (unsaid means filled; parse accepts "filled")

Kept in one piece (past 400 lines): the drawing, the captions and their parser are one grammar
that every offline model and the judge train and are graded on; apart, they would drift.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageChops, ImageDraw

SIZE = 64
# Shapes are drawn at twice the size and box-filtered down: smooth edges at little cost.
_SS = 2

# Chosen far apart in RGB (the closest pair, orange and red/yellow, is ~ 90 apart) and jittered
# by at most _JITTER per channel when drawn, so a colour never reads as its neighbour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "orange": (250, 140, 15),
    "yellow": (245, 225, 40),
    "green": (35, 160, 60),
    "blue": (35, 75, 220),
    "purple": (135, 45, 185),
    "pink": (250, 135, 205),
    "white": (248, 248, 248),
    "grey": (128, 128, 128),
    "black": (22, 22, 22),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "heart", "diamond", "moon")
SIZES = ("small", "large")
PLACES = ("left", "right", "top", "bottom", "centre")
RELATIONS = ("above", "below", "left of", "right of", "next to")
STYLES = ("filled", "outlined", "striped")
COLOUR_NAMES = tuple(COLOURS)

# Colour×shape pairs kept out of training: one per colour, every shape at least once.
HELDOUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("orange", "cross"),
        ("yellow", "ring"),
        ("green", "heart"),
        ("blue", "star"),
        ("purple", "circle"),
        ("pink", "square"),
        ("white", "diamond"),
        ("grey", "triangle"),
        ("black", "moon"),
    }
)
SPLITS = ("train", "heldout", "all")

PLACE_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
_JITTER = 12
_RADIUS = {"small": (7, 9), "large": (13, 15)}  # inclusive range, in 64-pixel units
_ONE_CENTRE = {"left": (16, 32), "right": (48, 32), "top": (32, 16), "bottom": (32, 48)}
_ONE_CENTRE["centre"] = (32, 32)
_PAIR_CENTRE = {"left": (17, 32), "right": (47, 32), "top": (32, 17), "bottom": (32, 47)}


@dataclass(frozen=True)
class Shape:
    shape: str | None
    colour: str | None
    size: str | None
    # Where it sits: left/right/top/bottom/centre (one shape), or its side of a pair.
    position: str | None


@dataclass(frozen=True)
class Scene:
    """What a picture shows. ``shapes`` are in caption order; ``relation`` links a pair
    (``None`` for one shape, or for two identical shapes: "two small red circles").

    A sampled scene has every field set and a ``seed`` for the jitter of sizes, places and
    colours; a parsed one has ``None`` wherever the text said nothing.
    """

    shapes: tuple[Shape, ...]
    background: str | None
    style: str | None
    relation: str | None = None
    seed: int | None = None

    @property
    def count(self) -> int:
        return len(self.shapes)


# ---------------------------------------------------------------------------------------------
# Sampling


def _allowed(colour: str, shape: str, split: str) -> bool:
    return split != "train" or (colour, shape) not in HELDOUT


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _sample_object(rng, split: str, must_be_heldout: bool) -> tuple[str, str]:
    if must_be_heldout:
        pairs = sorted(HELDOUT)
        return pairs[int(rng.integers(len(pairs)))]
    while True:
        colour, shape = _pick(rng, COLOUR_NAMES), _pick(rng, SHAPES)
        if _allowed(colour, shape, split):
            return colour, shape


def sample_scene(rng: np.random.Generator, split: str = "train") -> Scene:
    """A random scene. ``split="train"`` never uses a :data:`HELDOUT` colour×shape pair;
    ``"heldout"`` always uses at least one; ``"all"`` draws from everything."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    kind = rng.random()
    style = _pick(rng, STYLES)
    held = split == "heldout"
    if kind < 0.45:  # one shape
        colour, shape = _sample_object(rng, split, held)
        shapes = (Shape(shape, colour, _pick(rng, SIZES), _pick(rng, PLACES)),)
        relation = None
    elif kind < 0.85:  # a pair
        which_held = int(rng.integers(2)) if held else -1
        objs = [_sample_object(rng, split, which_held == i) for i in range(2)]
        relation = _pick(rng, RELATIONS)
        places = _REL_PLACES[relation]
        if relation == "next to":  # side by side, either way round
            places = ("left", "right") if rng.random() < 0.5 else ("right", "left")
        shapes = tuple(
            Shape(s, c, _pick(rng, SIZES), p) for (c, s), p in zip(objs, places, strict=True)
        )
    else:  # two of the same
        colour, shape = _sample_object(rng, split, held)
        size = _pick(rng, SIZES)
        places = ("left", "right") if rng.random() < 0.5 else ("top", "bottom")
        shapes = tuple(Shape(shape, colour, size, p) for p in places)
        relation = None
    used = {s.colour for s in shapes}
    background = _pick(rng, [c for c in COLOUR_NAMES if c not in used])
    return Scene(shapes, background, style, relation, seed=int(rng.integers(2**31)))


# ---------------------------------------------------------------------------------------------
# Captions and their inverse


def article(word: str) -> str:
    """The article English puts before ``word``: a or an."""
    return "an" if word[0] in "aeiou" else "a"


def plural(shape: str) -> str:
    return shape + "es" if shape.endswith("s") else shape + "s"


_SINGULAR = {plural(s): s for s in SHAPES}


def _noun_phrase(s: Shape, with_article: bool = True) -> str:
    words = [w for w in (s.size, s.colour, s.shape) if w]
    phrase = " ".join(words)
    return f"{article(phrase)} {phrase}" if with_article else phrase


def caption(scene: Scene) -> str:
    """The canonical caption of a scene (parse(caption(scene)) gives its description back).

    Fields that are ``None`` are left unsaid, so a caption can be made looser on purpose with
    :func:`loosen`."""
    if scene.count == 1:
        (s,) = scene.shapes
        text = _noun_phrase(s)
        if s.position:
            text += " " + PLACE_PHRASES[s.position]
    elif scene.relation is None:
        s = scene.shapes[0]
        words = [w for w in (s.size, s.colour, plural(s.shape)) if w]
        text = "two " + " ".join(words)
    else:
        a, b = scene.shapes
        text = f"{_noun_phrase(a)} {scene.relation} {_noun_phrase(b)}"
    if scene.background:
        text += f" on {article(scene.background)} {scene.background} background"
    if scene.style and scene.style != "filled":
        text += f", {scene.style}"
    return text


def loosen(scene: Scene, rng: np.random.Generator, p: float = 0.3) -> Scene:
    """The same scene with sizes, background and a single shape's place each left unsaid with
    probability ``p``: short prompts ("a red circle") for text-conditioned training."""

    def drop(value):
        return None if rng.random() < p else value

    shapes = scene.shapes
    if scene.count == 1:
        (s,) = shapes
        shapes = (replace(s, size=drop(s.size), position=drop(s.position)),)
    else:
        size_gone = [rng.random() < p for _ in shapes]
        if scene.relation is None:  # "two small red circles": both share one size word
            size_gone = [size_gone[0]] * 2
        shapes = tuple(
            replace(s, size=None if gone else s.size)
            for s, gone in zip(shapes, size_gone, strict=True)
        )
    # The style stays: an unsaid style means filled.
    return replace(scene, shapes=shapes, background=drop(scene.background))


def describe(scene: Scene) -> Scene:
    """What the caption of ``scene`` says, i.e. ``parse(caption(scene))``: no seed, and no places
    for "two ..." or "next to" (those say which shapes, not which goes where)."""
    shapes = scene.shapes
    if scene.count == 2 and scene.relation in (None, "next to"):
        shapes = tuple(replace(s, position=None) for s in shapes)
    return replace(scene, shapes=shapes, seed=None)


_ALIASES = {"center": "centre", "gray": "grey", "big": "large", "little": "small"}
_PLACE_WORDS = {phrase: place for place, phrase in PLACE_PHRASES.items()}
_REL_PLACES = {
    "above": ("top", "bottom"),
    "below": ("bottom", "top"),
    "left of": ("left", "right"),
    "right of": ("right", "left"),
    "next to": (None, None),
}


def _tokens(text: str) -> list[str]:
    text = text.strip().lower().rstrip(".").replace(",", " , ")
    return [_ALIASES.get(w, w) for w in text.split()]


def _parse_np(words: list[str], i: int, plural: bool) -> tuple[Shape, int]:
    """Reads [article] [size] [colour] shape from words[i:], returns the shape and next index."""
    if not plural and i < len(words) and words[i] in ("a", "an"):
        i += 1
    size = colour = None
    if i < len(words) and words[i] in SIZES:
        size, i = words[i], i + 1
    if i < len(words) and words[i] in COLOURS:
        colour, i = words[i], i + 1
    if i >= len(words):
        raise ValueError("expected a shape at the end of the caption")
    word = words[i]
    if plural:
        if word not in _SINGULAR:
            raise ValueError(f"expected a plural shape ({', '.join(_SINGULAR)}), got {word!r}")
        word = _SINGULAR[word]
    elif word not in SHAPES:
        raise ValueError(f"expected a shape ({', '.join(SHAPES)}), got {word!r}")
    return Shape(word, colour, size, None), i + 1


def parse(text: str) -> Scene:
    """Reads a caption of the grammar back into a :class:`Scene` (``seed=None``; any field the
    text leaves out is ``None``). Raises ``ValueError`` naming the first word it cannot read."""
    words = _tokens(text)
    if not words:
        raise ValueError("empty caption")
    relation = None
    if words[0] == "two":
        first, i = _parse_np(words, 1, plural=True)
        shapes = (first, first)
        relation_is_count = True
    else:
        first, i = _parse_np(words, 0, plural=False)
        shapes = (first,)
        relation_is_count = False
        rest = " ".join(words[i:])
        for place_phrase, place in _PLACE_WORDS.items():
            if rest == place_phrase or rest.startswith(place_phrase + " "):
                shapes = (replace(first, position=place),)
                i += len(place_phrase.split())
                break
        else:
            for rel in RELATIONS:
                if rest == rel or rest.startswith(rel + " "):
                    second, i = _parse_np(words, i + len(rel.split()), plural=False)
                    relation = rel
                    top, other = _REL_PLACES[rel]
                    shapes = (replace(first, position=top), replace(second, position=other))
                    break
    background = None
    if words[i : i + 1] == ["on"]:
        j = i + 1
        if j < len(words) and words[j] in ("a", "an"):
            j += 1
        if j + 1 < len(words) and words[j] in COLOURS and words[j + 1] == "background":
            background, i = words[j], j + 2
        else:
            raise ValueError(f"expected 'on a <colour> background' at {' '.join(words[i:])!r}")
    style = "filled"  # unsaid means filled
    if words[i : i + 1] == [","]:
        i += 1
    if i < len(words) and words[i] in STYLES:
        style, i = words[i], i + 1
    if i != len(words):
        raise ValueError(f"cannot read {' '.join(words[i:])!r} in {text!r}")
    if relation_is_count:
        relation = None
    if background is not None and any(s.colour == background for s in shapes):
        raise ValueError("a shape cannot have the background's colour")
    return Scene(shapes, background, style, relation)


def vocabulary() -> list[str]:
    """Every word the grammar writes or parse() reads, sorted (for the text tokenizers)."""
    words = set(COLOURS) | set(SHAPES) | set(_SINGULAR) | set(SIZES) | set(STYLES)
    for phrase in [*PLACE_PHRASES.values(), *RELATIONS]:
        words.update(phrase.split())
    words.update({"a", "an", "two", "on", "background", ","})
    words.update(_ALIASES)
    return sorted(words)


# ---------------------------------------------------------------------------------------------
# Themes

# What a stream of this world can be about: each theme is a test on a scene's shapes (their
# shape or colour, which every caption and prompt says). The offline CLIP learns them, so a
# stream's topic guard can tell a prompt or a picture on its theme from one off it.
THEMES: dict[str, Callable[[Shape], bool]] = {
    "circles and rings": lambda s: s.shape in ("circle", "ring"),
    "stars and hearts": lambda s: s.shape in ("star", "heart"),
    "squares and diamonds": lambda s: s.shape in ("square", "diamond"),
    "warm colours": lambda s: s.colour in ("red", "orange", "yellow", "pink"),
    "cool colours": lambda s: s.colour in ("green", "blue", "purple"),
    "black and white": lambda s: s.colour in ("black", "white", "grey"),
}


def on_theme(scene: Scene, theme: str) -> bool:
    """Whether every shape of the scene fits the theme."""
    return all(THEMES[theme](s) for s in scene.shapes)


# ---------------------------------------------------------------------------------------------
# Labels for the judge

# Heads and their number of classes. Object 1 is the only shape, or the top/left one of two;
# object 2 is the bottom/right one. -1 marks "not in this picture" or "not said".
HEADS: dict[str, int] = {
    "count": 2,
    "colour": len(COLOUR_NAMES),
    "shape": len(SHAPES),
    "size": len(SIZES),
    "position": len(PLACES),
    "colour2": len(COLOUR_NAMES),
    "shape2": len(SHAPES),
    "size2": len(SIZES),
    "position2": len(PLACES),
    "background": len(COLOUR_NAMES),
    "style": len(STYLES),
}
_INDEX = {
    "colour": COLOUR_NAMES,
    "shape": SHAPES,
    "size": SIZES,
    "position": PLACES,
    "background": COLOUR_NAMES,
    "style": STYLES,
}
_FIRST = {"top": 0, "left": 0, "centre": 0, "bottom": 1, "right": 1}


def _ix(kind: str, value: str | None) -> int:
    return -1 if value is None else _INDEX[kind].index(value)


def ordered_shapes(scene: Scene) -> tuple[Shape, ...]:
    """The scene's shapes in picture order: top or left first. A parsed "next to" pair has no
    known order and keeps the caption's."""
    if scene.count == 1 or any(s.position is None for s in scene.shapes):
        return scene.shapes
    return tuple(sorted(scene.shapes, key=lambda s: _FIRST[s.position]))


def labels(scene: Scene) -> dict[str, int]:
    """Class indices per judge head (see :data:`HEADS`); -1 where unknown or absent."""
    shapes = ordered_shapes(scene)
    out = {
        "count": scene.count - 1,
        "background": _ix("background", scene.background),
        "style": _ix("style", scene.style),
    }
    for n, suffix in ((0, ""), (1, "2")):
        s = shapes[n] if n < len(shapes) else Shape(None, None, None, None)
        out["colour" + suffix] = _ix("colour", s.colour)
        out["shape" + suffix] = _ix("shape", s.shape)
        out["size" + suffix] = _ix("size", s.size)
        out["position" + suffix] = _ix("position", s.position)
    return out


def label_names(head: str) -> tuple[str, ...]:
    base = head.rstrip("2")
    return ("one", "two") if base == "count" else _INDEX[base]


# ---------------------------------------------------------------------------------------------
# Drawing


def _ring_pts(r: float, n: int, cx: float = 0.0) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(a), r * np.sin(a)], axis=1)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    lo, hi = pts.min(0), pts.max(0)
    return (pts - (lo + hi) / 2) / ((hi - lo).max() / 2)


def _moon() -> np.ndarray:
    # A crescent: the unit disc minus a disc shifted right, so the bright arc faces left.
    ox, orad = 0.5, 0.85
    outer = _ring_pts(1.0, 96)
    outer = outer[(outer[:, 0] - ox) ** 2 + outer[:, 1] ** 2 > orad**2]
    outer = outer[np.argsort(np.arctan2(outer[:, 1], outer[:, 0]) % (2 * np.pi))]
    inner = _ring_pts(orad, 96, ox)
    inner = inner[inner[:, 0] ** 2 + inner[:, 1] ** 2 < 1.0]
    inner = inner[np.argsort(-(np.arctan2(inner[:, 1], inner[:, 0] - ox) % (2 * np.pi)))]
    return np.concatenate([outer, inner])


def _star() -> np.ndarray:
    k = np.arange(10)
    rad = np.where(k % 2 == 0, 1.0, 0.45)
    a = -np.pi / 2 + k * np.pi / 5
    return np.stack([rad * np.cos(a), 0.1 + rad * np.sin(a)], axis=1)


_W = 0.34  # half the width of a cross's arm
# Each shape as polygons in a unit box around its centre, each with a flag: True for a hole.
_UNIT: dict[str, list[tuple[np.ndarray, bool]]] = {
    "circle": [(_ring_pts(0.95, 40), False)],
    "ring": [(_ring_pts(1.0, 40), False), (_ring_pts(0.55, 28), True)],
    "square": [(np.array([(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)]), False)],
    "diamond": [(np.array([(0, -1), (0.8, 0), (0, 1), (-0.8, 0)]), False)],
    "triangle": [(np.array([(0, -1), (1, 0.8), (-1, 0.8)]), False)],
    "star": [(_star(), False)],
    "cross": [
        (
            np.array(
                [(-_W, -1), (_W, -1), (_W, -_W), (1, -_W), (1, _W), (_W, _W), (_W, 1), (-_W, 1)]
                + [(-_W, _W), (-1, _W), (-1, -_W), (-_W, -_W)]
            ),
            False,
        )
    ],
    "heart": [(_heart(), False)],
    "moon": [(_moon(), False)],
}


@functools.cache
def _stripes(ss: int) -> list[Image.Image]:
    """Diagonal stripes 2 pixels wide (at 64×64) over a canvas supersampled ``ss`` times, in a
    few phases so they do not always line up."""
    yy, xx = np.mgrid[0 : SIZE * ss, 0 : SIZE * ss]
    period = 4 * ss
    masks = []
    for phase in range(0, 4 * ss, ss):
        on = ((xx + yy + phase) % period) < period // 2
        masks.append(Image.fromarray((on * 255).astype(np.uint8), "L"))
    return masks


def _jitter(scene: Scene) -> tuple[list, list[tuple[int, int, int]], int]:
    """All of a scene's seeded jitter at once: colour tints (background, then each shape), each
    shape's centre and radius ``(cx, cy, r)`` in 64-pixel units, and the stripes' phase."""
    rng = np.random.default_rng(scene.seed)
    tint = rng.integers(-_JITTER, _JITTER + 1, (1 + scene.count, 3)).tolist()
    wobble = rng.integers(-3, 4, (scene.count, 3)).tolist()
    phase = int(rng.integers(4))
    # Pairs keep their shapes a little smaller and closer in, so two large ones never touch.
    centres = _PAIR_CENTRE if scene.count == 2 else _ONE_CENTRE
    j = 3 if scene.count == 1 else 2
    places = []
    for n, s in enumerate(scene.shapes):
        lo, hi = _RADIUS[s.size]
        if scene.count == 2 and s.size == "large":
            lo, hi = lo - 1, hi - 1
        r = lo + wobble[n][0] % (hi - lo + 1)
        cx, cy = (
            c + min(max(d, -j), j) for c, d in zip(centres[s.position], wobble[n][1:], strict=True)
        )
        cx, cy = (min(max(c, r + 1), SIZE - r - 1) for c in (cx, cy))
        places.append((cx, cy, r))
    return tint, places, phase


def _polygons(shape: str, radius: int, offset: int) -> list[tuple[list[float], bool]]:
    """A shape's polygons scaled to ``radius`` around ``(offset, offset)``, each with its flag
    (True for a hole)."""
    return [((pts * radius + offset).ravel().tolist(), hole) for pts, hole in _UNIT[shape]]


def masks(scene: Scene, size: int = SIZE) -> np.ndarray:
    """Where each shape of a sampled scene lies: float32 [count, size, size], the share of each
    cell its silhouette covers (outlined and striped shapes count as filled), in caption order.
    What a grounding loss points each object's words at."""
    _tint, places, _phase = _jitter(scene)
    out = np.zeros((scene.count, size, size), dtype=np.float32)
    for n, (s, (cx, cy, r)) in enumerate(zip(scene.shapes, places, strict=True)):
        mask = Image.new("L", (SIZE * _SS, SIZE * _SS), 0)
        mdraw = ImageDraw.Draw(mask)
        for pts, hole in _polygons(s.shape, r * _SS, 0):
            shifted = [v + (cx if i % 2 == 0 else cy) * _SS for i, v in enumerate(pts)]
            mdraw.polygon(shifted, fill=0 if hole else 255)
        out[n] = np.asarray(mask.resize((size, size), Image.BOX), dtype=np.float32) / 255
    return out


def draw(scene: Scene, scale: int = 1) -> Image.Image:
    """Renders a sampled scene (every field set) as a 64×64 RGB image, the same every time;
    ``scale`` 2 draws the same scene at 128×128 (the diffusion model's size)."""
    if scene.seed is None or scene.background is None or scene.style is None:
        raise ValueError("draw() needs a complete scene (from sample_scene), not a parsed one")
    tint, places, phase = _jitter(scene)
    ss = _SS * scale

    def colour(name, n):
        return tuple(min(max(c + d, 0), 255) for c, d in zip(COLOURS[name], tint[n], strict=True))

    img = Image.new("RGB", (SIZE * ss, SIZE * ss), colour(scene.background, 0))
    for n, (s, (cx, cy, r)) in enumerate(zip(scene.shapes, places, strict=True)):
        fill = colour(s.colour, n + 1)
        # Everything in a box around the shape (supersampled coordinates): pasting through a
        # full-size mask was most of the time.
        half = (r + 2) * ss
        x0, y0 = cx * ss - half, cy * ss - half
        polys = _polygons(s.shape, r * ss, half)
        if scene.style == "outlined":
            box = img.crop((x0, y0, x0 + 2 * half, y0 + 2 * half))
            bdraw = ImageDraw.Draw(box)
            for pts, _hole in polys:
                bdraw.polygon(pts, outline=fill, width=2 * ss)
            img.paste(box, (x0, y0))
            continue
        mask = Image.new("L", (2 * half, 2 * half), 0)
        mdraw = ImageDraw.Draw(mask)
        for pts, hole in polys:
            mdraw.polygon(pts, fill=0 if hole else 255)
        if scene.style == "striped":
            stripes = _stripes(ss)[phase].crop((x0, y0, x0 + 2 * half, y0 + 2 * half))
            mask = ImageChops.darker(mask, stripes)
            # An outline keeps the silhouette readable between the stripes.
            outline = Image.new("L", mask.size, 0)
            odraw = ImageDraw.Draw(outline)
            for pts, _hole in polys:
                odraw.polygon(pts, outline=255, width=ss)
            mask = ImageChops.lighter(mask, outline)
        img.paste(fill, (x0, y0, x0 + 2 * half, y0 + 2 * half), mask)
    return img.reduce(_SS)


# ---------------------------------------------------------------------------------------------
# Batches


def batches(
    seed: int, batch_size: int, split: str = "train", loose: float = 0.0
) -> Iterator[tuple[np.ndarray, list[str], dict[str, np.ndarray]]]:
    """An endless, seeded stream of ``(images uint8 [N, 64, 64, 3], captions, labels)``, labels
    being int64 arrays per judge head. ``loose`` > 0 leaves words out of captions (see
    :func:`loosen`); labels always describe the full picture."""
    rng = np.random.default_rng(seed)
    while True:
        images = np.empty((batch_size, SIZE, SIZE, 3), dtype=np.uint8)
        captions = []
        rows = []
        for n in range(batch_size):
            scene = sample_scene(rng, split)
            images[n] = np.asarray(draw(scene))
            said = loosen(scene, rng, loose) if loose > 0 else scene
            captions.append(caption(said))
            rows.append(labels(scene))
        yield images, captions, {k: np.array([r[k] for r in rows], dtype=np.int64) for k in HEADS}
