"""Teaching the offline diffusion model which words go where: two losses beside the denoising one.

Trained on denoising alone, the text encoder and the UNet's cross-attention read a caption as a
bag of words: in "a red circle above a blue star" red and blue land on either object, and a
pair's colours and shapes end up on the same object about as often as chance
(``../shared/offline-findings.md`` §2). Two losses, from what the world knows of each picture:

- **grounding** (TokenCompose's token loss): each word naming an object (its size, colour and
  shape) should spend its cross-attention on the cells its object touches, and the background's
  colour word on the rest: ``(1 - share of the word's attention inside its mask)²``, at
  every cross-attention layer, averaged over heads. This is what routes each place of the
  picture to its own object's words.
- **roles**: a linear head on the text encoder predicts, for each object word, which object of
  the picture it describes (top or left first; not asked for "next to", which says nothing of
  the order) and that object's colour and shape. It makes the encoder write the roles the
  UNet is to route by; it costs nothing at sampling time and is not saved.

Tokens: every word of the grammar is one token of the offline tokenizer (``offline.diffusion``),
so the n-th word of a caption is token n + 1, after the start token; ``words`` says what each is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from offline import world

# What a word of a caption names: its index into a scene's masks (``scene_masks``), or nothing.
NOTHING, FIRST, SECOND, BOTH, BACKGROUND = -1, 0, 1, 2, 3
RESOLUTIONS = (8, 4)  # the latent sizes the UNet's cross-attention runs at
TOUCHES = 0.1  # the share of a cell a shape covers for the cell to be the shape's


def words(scene: world.Scene) -> list[tuple[str, int]]:
    """The caption of ``scene`` (``world.caption``) word by word, each with what it names:
    ``FIRST``/``SECOND`` for the size, colour and shape words of the caption's first or second
    object, ``BOTH`` for those of "two ...", ``BACKGROUND`` for the background's colour, else
    ``NOTHING``. A comma is a word of its own, as the tokenizer reads it."""

    def phrase(s: world.Shape, role: int, plural: bool = False) -> list[tuple[str, int]]:
        said = [w for w in (s.size, s.colour) if w]
        noun = world.plural(s.shape) if plural else s.shape
        return [(w, role) for w in [*said, noun]]

    def one(s: world.Shape, role: int) -> list[tuple[str, int]]:
        named = phrase(s, role)
        return [(world.article(named[0][0]), NOTHING), *named]

    def plain(text: str) -> list[tuple[str, int]]:
        return [(w, NOTHING) for w in text.split()]

    if scene.count == 1:
        (s,) = scene.shapes
        out = one(s, FIRST)
        if s.position:
            out += plain(world.PLACE_PHRASES[s.position])
    elif scene.relation is None:
        out = [("two", NOTHING), *phrase(scene.shapes[0], BOTH, plural=True)]
    else:
        a, b = scene.shapes
        out = [*one(a, FIRST), *plain(scene.relation), *one(b, SECOND)]
    if scene.background:
        out += [("on", NOTHING), (world.article(scene.background), NOTHING)]
        out += [(scene.background, BACKGROUND), ("background", NOTHING)]
    if scene.style and scene.style != "filled":
        out += [(",", NOTHING), (scene.style, NOTHING)]
    return out


def token_roles(said: list[world.Scene | None], length: int) -> torch.Tensor:
    """What each token of each caption names: long [B, length], ``NOTHING`` for the start, end
    and padding tokens and for an empty caption (``None``)."""
    out = torch.full((len(said), length), NOTHING, dtype=torch.long)
    for b, scene in enumerate(said):
        if scene is not None:
            roles = [role for _word, role in words(scene)][: length - 2]
            out[b, 1 : 1 + len(roles)] = torch.tensor(roles)
    return out


def scene_masks(scene: world.Scene) -> dict[int, torch.Tensor]:
    """A sampled scene's targets at each of :data:`RESOLUTIONS`: float [4, res·res], 1 on the
    cells that hold some of its first object, its second, either (``BOTH``), and neither
    (``BACKGROUND``), indexed as the roles are. Whole cells, not the share of each covered: at
    4×4 a small shape covers a third of a cell or less, and a word that looks only there would
    still score (1 − 0.3)²."""
    out = {}
    for res in RESOLUTIONS:
        shapes = (torch.from_numpy(world.masks(scene, res)) >= TOUCHES).float().flatten(1)
        union = shapes.amax(0)
        first, second = shapes[0], shapes[-1] if scene.count == 2 else torch.zeros_like(union)
        out[res] = torch.stack([first, second, union, 1 - union])
    return out


def grounding_loss(attention: torch.Tensor, masks: torch.Tensor, roles: torch.Tensor):
    """TokenCompose's token loss: ``attention`` [B, places, tokens] (softmax over tokens),
    ``masks`` [B, 4, places] and ``roles`` [B, tokens] as above; the mean over named words of
    (1 − the share of the word's attention that falls inside its mask)², or None if no word of
    the batch names anything."""
    named = roles >= 0
    if not named.any():
        return None
    index = roles.clamp(min=0).unsqueeze(-1).expand(-1, -1, masks.shape[-1])
    target = masks.gather(1, index)  # [B, tokens, places]
    per_word = attention.transpose(1, 2)  # [B, tokens, places]
    inside = (per_word * target).sum(-1) / per_word.sum(-1).clamp(min=1e-8)
    return (1 - inside)[named].pow(2).mean()


class CrossAttentionGrounding:
    """Hooks on each cross-attention layer (``attn2``) of a UNet that, while a batch's targets are
    set (``expect``), compare the layer's attention with them; ``loss`` gives their mean and
    clears the targets, so the hooks do nothing outside a training step (and in copies of the
    UNet, such as the moving average's, made between steps)."""

    def __init__(self, unet: nn.Module):
        self.masks: dict[int, torch.Tensor] | None = None
        self.roles: torch.Tensor | None = None
        self.losses: list[torch.Tensor] = []
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                module.register_forward_hook(self._grade, with_kwargs=True)

    def expect(self, masks: dict[int, torch.Tensor], roles: torch.Tensor) -> None:
        self.masks, self.roles, self.losses = masks, roles, []

    def loss(self) -> torch.Tensor:
        losses, self.masks, self.roles, self.losses = self.losses, None, None, []
        return torch.stack(losses).mean() if losses else torch.zeros(())

    def _grade(self, attn, args, kwargs, output):
        if self.roles is None:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        context = kwargs["encoder_hidden_states"]
        # The layer's own queries and keys again: the attention kernel does not return its
        # weights, and at 8×8 and 4×4 places recomputing them costs little.
        query = attn.head_to_batch_dim(attn.to_q(hidden))
        key = attn.head_to_batch_dim(attn.to_k(context))
        probs = attn.get_attention_scores(query, key)  # [B·heads, places, tokens]
        probs = probs.view(hidden.shape[0], attn.heads, *probs.shape[1:]).mean(1)
        res = round(probs.shape[1] ** 0.5)
        loss = grounding_loss(probs, self.masks[res], self.roles)
        if loss is not None:
            self.losses.append(loss)


class RoleHead(nn.Module):
    """For each word naming an object: which object of the picture it is (top or left first),
    and that object's colour and shape, read from the text encoder's output at the word."""

    def __init__(self, width: int):
        super().__init__()
        self.slot = nn.Linear(width, 2)
        self.colour = nn.Linear(width, len(world.COLOURS))
        self.shape = nn.Linear(width, len(world.SHAPES))

    def forward(self, hidden: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        losses = [
            F.cross_entropy(getattr(self, k)(hidden).flatten(0, 1), v.flatten(), ignore_index=-1)
            for k, v in targets.items()
            if (v >= 0).any()
        ]
        return torch.stack(losses).mean() if losses else hidden.sum() * 0


def role_targets(said: list[world.Scene | None], length: int) -> dict[str, torch.Tensor]:
    """What :class:`RoleHead` is to predict at each token: long [B, length] per head, -1 where
    it asks nothing. The slot is asked only of a pair laid out by its relation (not "next to")."""
    out = {
        k: torch.full((len(said), length), -1, dtype=torch.long)
        for k in ("slot", "colour", "shape")
    }
    for b, scene in enumerate(said):
        if scene is None:
            continue
        order = world.ordered_shapes(scene)
        for n, (_word, role) in enumerate(words(scene)[: length - 2]):
            if role not in (FIRST, SECOND, BOTH):
                continue
            s = scene.shapes[0 if role == BOTH else role]
            out["colour"][b, n + 1] = world.COLOUR_NAMES.index(s.colour)
            out["shape"][b, n + 1] = world.SHAPES.index(s.shape)
            if role != BOTH and scene.relation not in (None, "next to"):
                out["slot"][b, n + 1] = order.index(s)
    return out
