"""The presets' real architectures with random weights, for benchmarks and tests with no hub.

`ensure(preset)` builds a model from its published config (generation/published_configs.py) with
torch's default initialisation, so every forward pass costs what the real one does, and saves it
in the layout its hub repository has (diffusers' model_index.json and component folders with
config.json and safetensors, CLIP tokenizer folders, the scheduler's config) as
PARTYHUB_MODELS_DIR/<preset name>: the preset's own `from_pretrained` then loads it as it would
downloaded weights. Nothing is downloaded; the pictures are noise.

A folder is built under another name and renamed into place only after its marker file
(MARKER, written last) is in it, so a build that dies half way leaves nothing the preset would
load; the next `ensure` removes the leftover and builds again. A folder without the marker holds
someone's real weights and is never touched.

Janus-Pro keeps its published widths but only JANUS_LAYERS of its 24 language and 24 vision
layers, and its tokenizer is a byte-level stand-in: DeepSeek's 100k-token BPE exists only on the
hub. Its image tokens, VQ decoder and generation head are full size.
"""

import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from generation import published_configs

log = logging.getLogger(__name__)

MARKER = "RANDOM_WEIGHTS.json"
JANUS_LAYERS = 2  # of Janus-Pro-1B's 24 language-model and 24 vision layers
DIFFUSION_SPECS = {
    "sd-turbo": published_configs.SD_TURBO,
    "sd15": published_configs.SD15,
    "sdxl-turbo": published_configs.SDXL_TURBO,
}
JANUS = "janus-pro-1b"
BUILDABLE = (*DIFFUSION_SPECS, JANUS)
# The special tokens Janus's processor and generate need, spelled as in Janus-Pro's tokenizer.
BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
IMAGE, BOI, EOI = "<image_placeholder>", "<begin_of_image>", "<end_of_image>"
# Janus-Pro's chat template cut down to the one text message PartyHub sends (the published one
# also renders images and a system prompt).
JANUS_CHAT_TEMPLATE = (
    "{%for message in messages%}<|User|>: {{message['content'][0]['text']}}\n\n{%endfor%}"
    "{%if add_generation_prompt%}<|Assistant|>:{%endif%}"
)


def ensure(preset):
    """The preset's random-weight folder under PARTYHUB_MODELS_DIR, built unless it is there and
    complete with the current configs. Raises ValueError for a preset with no published config
    here, or a folder that holds weights not built by this module."""
    if preset.name not in BUILDABLE:
        raise ValueError(f"no published config for {preset.name!r}: one of {', '.join(BUILDABLE)}")
    folder = preset.local_folder()
    digest = spec_digest(preset.name)
    marker = folder / MARKER
    if marker.exists():
        if json.loads(marker.read_text()).get("spec") == digest:
            return folder
        log.info("%s was built from other configs; building it again", folder)
    elif folder.exists() and any(folder.iterdir()):
        raise ValueError(
            f"{folder} holds files that this module did not build (no {MARKER}): "
            "move them away to build random weights there."
        )
    import transformers

    transformers.utils.logging.disable_progress_bar()  # a log line per build, not a bar per shard
    building = folder.with_name(f"{folder.name}.building")
    shutil.rmtree(building, ignore_errors=True)  # a build that died half way
    start = time.perf_counter()
    if preset.name == JANUS:
        build_janus(building)
    else:
        build_diffusion(DIFFUSION_SPECS[preset.name], building)
    seconds = time.perf_counter() - start
    (building / MARKER).write_text(
        json.dumps({"preset": preset.name, "spec": digest, "build_seconds": round(seconds, 1)})
    )
    shutil.rmtree(folder, ignore_errors=True)  # ours but outdated, or an empty folder
    os.replace(building, folder)
    log.info("built %s with random weights in %.0f s", folder, seconds)
    return folder


def ensure_tiny_decoder(preset):
    """The preset's TAESD (its `preview_decoder` folder under PARTYHUB_MODELS_DIR) with random
    weights, built from AutoencoderTiny's default config (TAESD's and TAESDXL's published
    architecture) unless a folder is there; None for a preset without one. A folder already there,
    random or real, is used as it is."""
    if not preset.preview_decoder:
        return None
    from django.conf import settings

    folder = Path(settings.PARTYHUB_MODELS_DIR) / preset.preview_decoder[0]
    if (folder / "config.json").exists():
        return folder
    import diffusers
    import torch

    building = folder.with_name(f"{folder.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    torch.manual_seed(0)
    with _default_dtype(torch.float16):
        diffusers.AutoencoderTiny().save_pretrained(building)
    (building / MARKER).write_text(json.dumps({"preset": folder.name, "spec": "AutoencoderTiny"}))
    shutil.rmtree(folder, ignore_errors=True)  # an empty folder
    os.replace(building, folder)
    return folder


def prepare_bench(name):
    """`python -m generation.bench --random-weights NAME`: the folder built or reused, then
    loaded once through the preset's own loading path (get_pipeline), each step timed; returns
    the name for --model."""
    from generation.pipelines import get_pipeline
    from generation.presets import get_preset

    preset = get_preset(name)
    if preset is None:
        raise SystemExit(f"no preset {name!r}")
    start = time.perf_counter()
    try:
        folder = ensure(preset)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    ensure_tiny_decoder(preset)  # TAESD: previews, and the final decode with --decoder tiny
    built = json.loads((folder / MARKER).read_text())["build_seconds"]
    print(
        f"{name}: random weights in {folder} ({folder_bytes(folder) / 1e9:.2f} GB; built in "
        f"{built:.0f} s, this run {time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    start = time.perf_counter()
    get_pipeline(preset)
    print(f"{name}: loaded with from_pretrained in {time.perf_counter() - start:.1f} s", flush=True)
    return name


def is_random(folder):
    return (Path(folder) / MARKER).exists()


def spec_digest(name):
    spec = published_configs.JANUS_PRO_1B if name == JANUS else DIFFUSION_SPECS[name]
    text = json.dumps([spec, JANUS_LAYERS if name == JANUS else None], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folder_bytes(folder):
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


@contextmanager
def _default_dtype(dtype):
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


# --- Stable Diffusion pipelines -------------------------------------------------------------------


def build_diffusion(spec, folder):
    """Each component built, saved in float16 and let go before the next one: the peak is the
    largest component (SDXL's UNet, 5 GB), not the pipeline."""
    import diffusers
    import torch
    import transformers

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    index = {"_class_name": spec["pipeline"], "_diffusers_version": diffusers.__version__}
    with _default_dtype(torch.float16):
        for name, model_class, config in (
            ("unet", diffusers.UNet2DConditionModel, spec["unet"]),
            ("vae", diffusers.AutoencoderKL, spec["vae"]),
        ):
            model_class.from_config(config).save_pretrained(folder / name)
            index[name] = ["diffusers", model_class.__name__]
    for i, ((class_name, config), tokenizer) in enumerate(
        zip(spec["text_encoders"], spec["tokenizers"], strict=True)
    ):
        suffix = f"_{i + 1}" if i else ""
        model_class = getattr(transformers, class_name)
        model = model_class._from_config(transformers.CLIPTextConfig(**config), dtype=torch.float16)
        model.save_pretrained(folder / f"text_encoder{suffix}")
        del model
        write_clip_tokenizer(folder / f"tokenizer{suffix}", **tokenizer)
        index[f"text_encoder{suffix}"] = ["transformers", class_name]
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
    scheduler_class, scheduler_config = spec["scheduler"]
    getattr(diffusers, scheduler_class).from_config(scheduler_config).save_pretrained(
        folder / "scheduler"
    )
    index["scheduler"] = ["diffusers", scheduler_class]
    if spec["pipeline"] == "StableDiffusionPipeline":
        index.update(_safety_checker(spec, folder))
        index["image_encoder"] = [None, None]
    else:
        index.update(spec.get("pipeline_kwargs", {}))
        index.update(feature_extractor=[None, None], image_encoder=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _safety_checker(spec, folder):
    """sd15's CLIP safety checker at full size, its thresholds (2) above any cosine similarity
    (at most 1), so that random weights flag nothing; sd-turbo ships none."""
    if "safety_checker" not in spec:
        return {
            "safety_checker": [None, None],
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
        }
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(**spec["safety_checker"])
    checker = StableDiffusionSafetyChecker._from_config(config, dtype=torch.float16)
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(2.0)
        checker.special_care_embeds_weights.fill_(2.0)
    checker.save_pretrained(folder / "safety_checker")
    CLIPImageProcessor(**spec["feature_extractor"]).save_pretrained(folder / "feature_extractor")
    return {
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "requires_safety_checker": True,
    }


# --- CLIP's tokenizer, from the BPE merges open_clip ships ----------------------------------------


def _bytes_to_unicode():
    """OpenAI's byte -> printable character table (GPT-2's and CLIP's tokenizers), in order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def clip_vocabulary():
    """(vocab, merges) of OpenAI's CLIP tokenizer, rebuilt as its simple_tokenizer.py does from
    `bpe_simple_vocab_16e6.txt.gz`: 49408 tokens, 48894 merges."""
    import gzip
    import importlib.util

    # The file open_clip ships, found without importing open_clip (and its timm, ftfy): a bare
    # GPU machine carries the package for this file alone (bench/gpu_wheels.sh).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("open_clip (open-clip-torch) holds CLIP's BPE vocabulary")
    path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # after the header line, as CLIP uses them
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [char + "</w>" for char in alphabet]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_clip_tokenizer(folder, pad_token):
    """vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json as the Stable
    Diffusion repositories have them (no tokenizer.json: transformers builds it on loading)."""
    vocab, merges = clip_vocabulary()
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    specials = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    config = {
        **specials,
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


# --- Janus-Pro through transformers ---------------------------------------------------------------


def build_janus(folder):
    """Janus-Pro-1B's config with JANUS_LAYERS layers a tower, in bfloat16 as published, and a
    processor with a byte-level tokenizer (every byte a token; the specials Janus needs)."""
    import torch
    import transformers

    spec = published_configs.JANUS_PRO_1B
    tokenizer = janus_byte_tokenizer()
    vocab = tokenizer.get_vocab()
    text = {**spec["text_config"], "num_hidden_layers": JANUS_LAYERS}
    text.update(bos_token_id=vocab[BOS], eos_token_id=vocab[EOS], pad_token_id=vocab[PAD])
    config = transformers.JanusConfig(
        text_config=text,
        vision_config={**spec["vision_config"], "num_hidden_layers": JANUS_LAYERS},
        vq_config=spec["vq_config"],
        image_token_id=vocab[IMAGE],  # the stand-in tokenizer's id, not Janus's 100581
    )
    torch.manual_seed(0)
    model = transformers.JanusForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    # What the conversion script writes into Janus-Pro's generation_config.json.
    generation = model.generation_config
    generation._from_model_config = False  # else from_pretrained rebuilds it without the below
    generation.temperature = 1.0
    generation.guidance_scale = 5.0
    generation.pad_token_id = vocab[PAD]
    generation.generation_kwargs = {"boi_token_id": vocab[BOI]}
    model.save_pretrained(folder)
    del model
    side, tokens = spec["vision_config"]["image_size"], spec["vision_config"]["num_image_tokens"]
    janus_processor(tokenizer, side, tokens).save_pretrained(folder)


def janus_processor(tokenizer, side, num_image_tokens):
    """A JanusProcessor around `tokenizer` for `side`-pixel images of `num_image_tokens` tokens,
    with the cut-down chat template (the tiny Janus of tests/jobs/test_autoregressive.py too)."""
    import transformers

    return transformers.JanusProcessor(
        image_processor=transformers.JanusImageProcessor(
            size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ),
        tokenizer=tokenizer,
        chat_template=JANUS_CHAT_TEMPLATE,
        num_image_tokens=num_image_tokens,
    )


def janus_byte_tokenizer():
    """Every byte a token (BPE without merges), so any prompt encodes, plus the specials Janus
    needs; BOS is prepended as Llama's tokenizer does, and Janus's guidance keeps it in the
    blanked prompt."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [BOS, EOS, PAD, IMAGE, BOI, EOI]
    # Sorted: the alphabet comes from a hash set, in another order in every process.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        # JanusProcessor reads these three as tokenizer.image_token, .boi_token, .eoi_token.
        extra_special_tokens={"image_token": IMAGE, "boi_token": BOI, "eoi_token": EOI},
    )
