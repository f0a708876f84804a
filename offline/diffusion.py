"""The offline diffusion model: a Stable-Diffusion-shaped pipeline small enough to train on a CPU.

It is an ordinary diffusers folder (``model_index.json``, ``vae/``, ``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``) that ``StableDiffusionPipeline.from_pretrained`` loads like any
checkpoint, so every mode the app has (txt2img, img2img, inpaint, variations, walks, guidance)
runs through the same code as with real weights.

- ``AutoencoderKL``: 128×128 pictures to 16×16×4 latents (8× down, as in Stable Diffusion), so
  the app's sizes and latent shapes behave as with real models. ``offline.train_vae``.
- A ``CLIPTokenizer`` whose vocabulary holds every word of the world's grammar as one token (and
  every single byte, so any text still encodes), read by a ``T5EncoderModel``, and a
  ``UNet2DConditionModel`` that attends to it at 8×8 and 4×4. ``offline.train_diffusion``
  trains both together, on latents of ``split="train"`` pictures.

The text encoder is bidirectional, as Imagen's T5 is, not causal as Stable Diffusion's CLIP
text model: in "a red circle above a blue star" the words "red circle" must know the "above"
that comes after them to say where they go. With a causal ``CLIPTextModel`` of the same size,
trained 8,000 steps, a pair's colours and shapes landed on the right object half the time
(training captions as well as held-out ones), while single shapes were right 0.97 of the time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from offline import world

WEIGHTS = Path(__file__).resolve().parent / "weights" / "diffusion"
SIZE = 128  # world.draw(scene, scale=2)
SCALE = SIZE // world.SIZE
MAX_TOKENS = 24  # the longest caption is 18 tokens with its start and end

VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [16, 32, 64, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    # One group: group norm over a few channels of a flat background would cancel its colour
    # out, and colour is most of what these pictures are.
    "norm_num_groups": 1,
    "sample_size": SIZE,
}

TEXT = {
    "d_model": 64,
    "d_kv": 16,
    "num_heads": 4,
    "d_ff": 256,
    "num_layers": 3,
    "feed_forward_proj": "gated-gelu",  # T5 v1.1, the encoder Imagen used
    "dropout_rate": 0.0,
}

UNET = {
    "sample_size": SIZE // 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [48, 96, 96],
    "layers_per_block": 1,
    # No attention at 16×16: it tripled the time of a step, and words reach every place from the
    # 8×8 and 4×4 levels.
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "cross_attention_dim": TEXT["d_model"],
    "attention_head_dim": 4,  # diffusers' name for the number of heads (4 of 24)
    "norm_num_groups": 16,
}

# Stable Diffusion's own noise schedule and sampler defaults, so the app's samplers apply as is.
SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}

START, END = "<|startoftext|>", "<|endoftext|>"


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """How CLIPTokenizer splits one word (as byte-level symbols) with these merges."""
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [
            (ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(pieces, pieces[1:], strict=False))
        ]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def tokenizer_files(words: list[str]) -> tuple[dict[str, int], list[str]]:
    """A CLIP BPE vocabulary (``vocab.json``) and merges (``merges.txt`` lines) in which every
    word of ``words`` is a single token and every byte is one too. Merges are added word by
    word, each at the lowest priority, until the word is whole; a word already whole is never
    touched again, so later merges cannot split it."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    ranks: dict[tuple[str, str], int] = {}
    for word in sorted(set(words)):
        pieces = _bpe(word, ranks)
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(ranks)
            tokens.append(pair[0] + pair[1])
            pieces = _bpe(word, ranks)
    tokens += [START, END]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return vocab, [f"{a} {b}" for (a, b), _ in sorted(ranks.items(), key=lambda kv: kv[1])]


def write_tokenizer(folder: Path):
    """The tokenizer folder, loaded back as the pipeline will load it."""
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_files([w for w in world.vocabulary() if w != ","])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(
        folder, model_max_length=MAX_TOKENS, pad_token=END, local_files_only=True
    )
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def text_encoder(tokenizer):
    """A new, untrained text encoder for this tokenizer. No attention mask is given, in training
    or by the pipeline (its config has no ``use_attention_mask``), so padding is read as words
    are, the same way both times."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            **TEXT,
        )
    )


def scheduler():
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(**SCHEDULE)


def assemble(vae, text_encoder, tokenizer, unet):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] → float [N, 3, H, W] in [-1, 1], the VAE's range."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_images(pixels: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_pixels`, clamped."""
    return (
        (pixels.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1))
        .cpu()
        .numpy()
    )


def draw_batch(scenes: list[world.Scene], scale: int = SCALE) -> np.ndarray:
    """The scenes drawn as uint8 [N, H, W, 3]: 128×128 by default, 64×64 with ``scale`` 1."""
    return np.stack([np.asarray(world.draw(s, scale=scale)) for s in scenes])


def to_judge(images: np.ndarray) -> np.ndarray:
    """128×128 pictures box-filtered to the judge's 64×64 (how the world itself smooths)."""
    n, h, w, c = images.shape
    return (
        images.reshape(n, h // SCALE, SCALE, w // SCALE, SCALE, c)
        .mean(axis=(2, 4))
        .round()
        .astype(np.uint8)
    )
