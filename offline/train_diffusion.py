"""Train the offline diffusion model's UNet and text encoder: ``python -m offline.train_diffusion``.

Needs the autoencoder from ``offline.train_vae`` in ``<out>/vae``. Draws a pool of
``split="train"`` scenes at 128×128 and encodes each once into its 16×16×4 latent; then trains the
``UNet2DConditionModel`` and the ``T5EncoderModel`` together, from scratch, to predict the noise
added at a random step of Stable Diffusion's schedule, given the caption:

- each step writes the captions afresh: a third of them loosened (``world.loosen``), so short
  prompts a person types ("a red circle") work as well as the grammar's full sentences, and one
  in ten left empty, the unconditional case classifier-free guidance steers away from;
- the loss is weighted by min-SNR (γ = 5), which spends less effort on nearly clean steps and
  converges in far fewer steps than the plain loss;
- ``--grounding`` and ``--roles`` add the losses of ``offline.grounding``, which teach the
  model which words go on which object (the shipped model: two resumed runs with both at 0.05,
  docs/models.md);
- an exponential moving average of the weights is what gets saved: diffusers' ``EMAModel``,
  whose decay grows as (1 + n) / (10 + n) up to 0.999, so the average follows the first steps
  closely and a checkpoint saved early is already a usable model.

Writes the whole pipeline folder (``model_index.json``, ``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``; ``vae/`` as trained) and the ``diffusion`` entry of
``training.json``, then grades 200 held-out captions with the judge
(``python -m offline.evaluate diffusion`` repeats that on its own).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from offline import diffusion as D
from offline import evaluate, training, world
from offline import grounding as G

EMPTY = 0.1  # share of captions dropped for classifier-free guidance
LOOSE = 1 / 3  # share of captions with words left out
MIN_SNR = 5.0
EMA_DECAY = 0.999


@torch.no_grad()
def encode_pool(vae, scenes: list[world.Scene], batch: int = 100) -> torch.Tensor:
    """Each scene drawn and encoded once: [N, 4, 16, 16] latents, already scaled."""
    out = []
    for i in range(0, len(scenes), batch):
        x = D.to_pixels(D.draw_batch(scenes[i : i + batch])).to(vae.device)
        with training.low_precision(vae.device):
            mean = vae.encode(x).latent_dist.mode()
        out.append(mean.float().cpu() * vae.config.scaling_factor)
    return torch.cat(out)


def said(scenes, rng: np.random.Generator) -> list[world.Scene | None]:
    """What each step's captions say of its scenes: the whole scene, a loosened one, or None for
    an empty caption."""
    out = []
    for scene in scenes:
        roll = rng.random()
        if roll < EMPTY:
            out.append(None)
        elif roll < EMPTY + LOOSE:
            out.append(world.loosen(scene, rng, 0.4))
        else:
            out.append(scene)
    return out


def captions(said_scenes: list[world.Scene | None]) -> list[str]:
    return ["" if s is None else world.caption(s) for s in said_scenes]


def pool_masks(scenes: list[world.Scene]) -> dict[int, torch.Tensor]:
    """Each scene's grounding targets (``grounding.scene_masks``), stacked per resolution."""
    each = [G.scene_masks(s) for s in scenes]
    return {res: torch.stack([m[res] for m in each]) for res in G.RESOLUTIONS}


def cached(folder: Path | None, vae, args, encode) -> torch.Tensor:
    """The encoded pool from ``folder`` when an earlier run of the same seed, size and
    autoencoder weights saved it there, else ``encode()``, saved there for the next run: a
    resumed run then starts training in seconds, not the minutes encoding takes."""
    if folder is None:
        return encode()
    weights = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in vae.parameters()))
    path = folder / f"pool-{args.seed}-{args.pool}-{weights.hexdigest()[:16]}.pt"
    if path.exists():
        return torch.load(path)
    pool = encode()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(pool, path)
    return pool


def encode_text(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(
        texts, padding="max_length", max_length=D.MAX_TOKENS, truncation=True, return_tensors="pt"
    ).input_ids
    return text_encoder(ids.to(text_encoder.device)).last_hidden_state


def train(parts: nn.ModuleDict, tokenizer, pool: torch.Tensor, scenes, run: training.Run):
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    args = run.args
    grounding = G.CrossAttentionGrounding(parts["unet"]) if args.grounding else None
    masks = pool_masks(scenes) if grounding else {}
    if args.roles:
        parts["roles"] = G.RoleHead(D.TEXT["d_model"]).to(run.device)
    noise_schedule = DDPMScheduler(**D.SCHEDULE)
    alphas = noise_schedule.alphas_cumprod
    snr = alphas / (1 - alphas)
    weights = snr.clamp(max=MIN_SNR) / snr  # min-SNR for an epsilon-predicting model
    on = run.device
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    opt, sched = training.one_cycle(parts.parameters(), args.lr, args.steps, weight_decay=0.01)
    ema = EMAModel(parts.parameters(), decay=EMA_DECAY)
    parts.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(pool), (args.batch_size,), generator=g)
        latents = pool[idx]
        # Drawn on the CPU whatever the device, so a seed gives the same batches everywhere.
        noise = torch.randn(latents.shape, generator=g)
        t = torch.randint(0, len(alphas), (args.batch_size,), generator=g)
        noisy = noise_schedule.add_noise(latents, noise, t).to(on)
        noise, t = noise.to(on), t.to(on)
        told = said([scenes[i] for i in idx], rng)
        context = encode_text(tokenizer, parts["text_encoder"], captions(told))
        if grounding:
            roles = G.token_roles(told, D.MAX_TOKENS).to(on)
            grounding.expect({res: m[idx].to(on) for res, m in masks.items()}, roles)
        pred = parts["unet"](noisy, t, context).sample
        per_picture = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_picture * weights.to(on)[t]).mean()
        parts_of_loss = {}
        if grounding:
            parts_of_loss["grounding"] = grounding.loss()
        if args.roles:
            targets = G.role_targets(told, D.MAX_TOKENS)
            parts_of_loss["roles"] = parts["roles"](
                context, {k: v.to(on) for k, v in targets.items()}
            )
        denoising = loss
        for name, value in parts_of_loss.items():
            loss = loss + getattr(args, name) * value
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(parts.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.step(parts.parameters())
        run.step(
            step,
            loss.item(),
            denoising=denoising.item(),
            **{k: v.item() for k, v in parts_of_loss.items()},
        )
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            save(averaged(parts, ema), tokenizer, run, step)
    return averaged(parts, ema).eval()


def averaged(parts: nn.ModuleDict, ema) -> nn.ModuleDict:
    """A copy of ``parts`` holding the moving average's weights."""
    out = copy.deepcopy(parts)
    ema.copy_to(out.parameters())
    return out


def save(parts, tokenizer, run: training.Run, step: int):
    """The whole pipeline folder, weights in float16 (half the bytes; from_pretrained casts them
    back to the dtype asked for), loaded back as the app will load it."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(run.args.out / "vae", local_files_only=True)
    halves = {name: copy.deepcopy(part).half() for name, part in parts.items()}
    pipe = D.assemble(vae.half(), halves["text_encoder"], tokenizer, halves["unet"])
    pipe.save_pretrained(run.args.out)
    run.say(f"saved step {step} to {run.args.out}")
    return evaluate.load_diffusion(run.args.out)


def main(argv=None) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    parser = training.arguments(
        __doc__,
        out=D.WEIGHTS,
        steps=7000,
        batch_size=64,
        lr=1e-3,
        seed=0,
        threads=2,
        pool=40_000,
        save_every=1000,
        eval=200,
        device="cpu",
        resume="the UNet and text encoder",
    )
    parser.add_argument(
        "--grounding", type=float, default=0.0, help="weight of the cross-attention grounding loss"
    )
    parser.add_argument("--roles", type=float, default=0.0, help="weight of the text role loss")
    parser.add_argument("--cache", type=Path, help="keep the encoded pool here for later runs")
    args = parser.parse_args(argv)
    run = training.Run(args, "diffusion")
    vae = AutoencoderKL.from_pretrained(args.out / "vae", local_files_only=True)
    vae = vae.to(run.device).eval()
    tokenizer = D.write_tokenizer(args.out / "tokenizer")
    rng = np.random.default_rng(args.seed)
    scenes = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    pool = cached(args.cache, vae, args, lambda: encode_pool(vae, scenes))
    run.say(f"a pool of {len(scenes)} encoded pictures; latent std {pool.std():.3f}")
    if args.resume:
        from transformers import T5EncoderModel

        unet = UNet2DConditionModel.from_pretrained(
            args.out / "unet", dtype=torch.float32, local_files_only=True
        )
        text = T5EncoderModel.from_pretrained(
            args.out / "text_encoder", dtype=torch.float32, local_files_only=True
        )
    else:
        unet, text = UNet2DConditionModel(**D.UNET), D.text_encoder(tokenizer)
    parts = nn.ModuleDict({"unet": unet, "text_encoder": text}).to(run.device)
    parts = train(parts, tokenizer, pool, scenes, run)
    pipe = save(parts, tokenizer, run, args.steps)
    entry = run.record(grounding=args.grounding, roles=args.roles)
    if args.eval:
        scores = evaluate.diffusion_scores(pipe, evaluate.heldout_captions(args.eval))
        run.say("held-out captions: " + " ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        entry["heldout"] = {k: round(v, 4) for k, v in scores.items()}
    run.save_record(entry)


if __name__ == "__main__":
    main()
