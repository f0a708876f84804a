"""What one training step of each offline model costs on this machine, for the budgets of
docs/models.md: the diffusion model's UNet and text encoder, the image tokenizer (VQ), the
token model's GPT-2 at its shipped size and a wider one, and the masked token model's transformer
(``offline.masked``) at the wider one's size.

    .venv/bin/python bench/training_steps.py [--steps 5] [--threads 2] [--bfloat16] [--only TEXT]

Each part is built from its trainer's own config with random weights and stepped on random data
of its trainer's default batch (the loss and optimiser as the trainer's, drawing and encoding
aside): the step's forward, backward and AdamW update. The first step is not counted; the
median and the fastest of the rest are printed. `--bfloat16` also times each under bfloat16
autocast, whatever `training.low_precision` would choose, with its ratio to float32. A
benchmark, not a test.
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parts():
    """(name, a function that makes (model, one step's loss function))."""
    import torch
    from diffusers import UNet2DConditionModel, VQModel
    from transformers import BertForMaskedLM, GPT2LMHeadModel

    from offline import autoregressive as A
    from offline import diffusion as D
    from offline import masked as M
    from offline import train_ar

    def diffusion():
        unet = UNet2DConditionModel(**D.UNET)
        latents = torch.randn(64, unet.config.in_channels, 16, 16)
        context = torch.randn(64, D.MAX_TOKENS, unet.config.cross_attention_dim)
        t = torch.randint(0, 1000, (64,))
        return unet, lambda: (unet(latents, t, context).sample - latents).pow(2).mean()

    def vq():
        model = VQModel(**A.VQ)
        x = torch.rand(32, 3, A.SIZE, A.SIZE) * 2 - 1

        def loss():
            h = model.encode(x).latents
            quant, commit, _ = model.quantize(h.float())
            return (model.decode(quant, force_not_quantize=True).sample - x).abs().mean() + commit

        return model, loss

    def gpt(width, layers):
        def make():
            config = A.gpt_config(text_vocab=700)
            config.n_embd, config.n_layer = width, layers
            model = GPT2LMHeadModel(config)
            prompt = torch.randint(0, 700, (16, A.TEXT_TOKENS + 1))
            codes = torch.randint(0, A.CODES, (16, A.GRID * A.GRID))
            return model, lambda: train_ar.image_loss(model, prompt, codes, 700)

        return make

    def masked(width, layers):
        def make():
            model = BertForMaskedLM(M.bert_config(700, width, layers))
            captions = torch.randint(0, 700, (16, A.TEXT_TOKENS))
            codes = torch.randint(0, A.CODES, (16, A.GRID * A.GRID))
            return model, lambda: M.masked_loss(model, captions, codes, 700, M.random_masks(16))

        return make

    return [
        ("diffusion UNet, batch 64", diffusion),
        ("image tokenizer (VQ), batch 32", vq),
        ("GPT-2 width 128, 4 layers, batch 16", gpt(128, 4)),
        ("GPT-2 width 192, 6 layers, batch 16", gpt(192, 6)),
        ("masked transformer width 192, 6 layers, batch 16", masked(192, 6)),
    ]


def timed(make, steps, bfloat16):
    import torch

    model, loss_of = make()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    context = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if bfloat16
        else contextlib.nullcontext
    )
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with context():
            loss = loss_of()
        optimiser.zero_grad(set_to_none=True)
        loss.float().backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return times[1:]  # the first step warms caches up


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bfloat16", action="store_true")
    parser.add_argument("--only", default="", help="time only the parts whose name has this")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    for name, make in parts():
        if args.only not in name:
            continue
        fp32 = timed(make, args.steps, False)
        line = f"{name}: float32 median {statistics.median(fp32):.2f} s, fastest {min(fp32):.2f} s"
        if args.bfloat16:
            bf16 = timed(make, max(2, args.steps // 2), True)
            ratio = statistics.median(bf16) / statistics.median(fp32)
            line += f"; bfloat16 median {statistics.median(bf16):.2f} s ({ratio:.1f}x)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
