"""Model presets by name: what each model can do, its defaults, the limits a request must keep."""

from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings

from generation import clip_guided
from generation.errors import WeightsMissing
from generation.samplers import SAMPLERS
from generation.tokens import token_limit

OFFLINE = "offline"
# The bundled offline model's pipeline folder, committed with the code (offline/diffusion.py).
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "offline" / "weights"
OVERHEAD_PROBE = "overhead-probe"
OVERHEAD_PICTURES = "overhead-pictures"  # the probe with pictures (generation/probe_pictures.py)
# What an autoregressive model's PNG says it sampled with: tokens drawn from the softmax
# (transformers calls it multinomial sampling), not a diffusion sampler.
TOKEN_SAMPLER = "Multinomial"


def hub_cache():
    """The Hugging Face cache folder that hub ids are looked up in (HF_HUB_CACHE, HF_HOME)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def in_hub_cache(hub_id, filename):
    """Whether the local Hugging Face cache holds `filename` of `hub_id` (never asks the hub)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, filename), str)


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # "diffusion", "autoregressive" or "clip-guided"
    # The diffusers (or, autoregressive, transformers) class that loads it; clip-guided: the
    # diffusers class of its autoencoder (generation/clip_guided.py loads the pair).
    pipeline: str
    source: str  # a hub id; a folder of the same name under PARTYHUB_MODELS_DIR wins over it
    title: str
    # What every Stable Diffusion pipeline here renders; SDXL has no walk (its prompt encoder
    # gives pooled embeddings too, which the walk does not interpolate yet).
    modes: tuple = ("txt2img", "img2img", "inpaint", "variation", "walk")
    defaults: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    offline: bool = False  # needs no download: shipped with PartyHub
    # Where shipped weights are, when no folder under PARTYHUB_MODELS_DIR replaces them.
    bundled: Path | None = None
    # TAESD for live previews: (folder under PARTYHUB_MODELS_DIR, hub id); () for none.
    preview_decoder: tuple = ()
    # Previews as a linear map of the latents' channels to colours (`vae/latent_colours.json`
    # beside the weights, offline/latent_colours.py), else the model's own autoencoder: small
    # models without a TAESD.
    previews_from_latents: bool = False
    note: str = ""
    # The file that marks a folder of its weights: diffusers writes model_index.json,
    # transformers config.json.
    index_file: str = "model_index.json"
    samplers: tuple = tuple(SAMPLERS)  # the `sampler` values it takes
    # The subfolders of the tokenizers whose prompts the model cuts to their model_max_length
    # (generation/tokens.py refuses longer ones); () where the whole prompt is read.
    text_tokenizers: tuple = ("tokenizer",)
    # Takes AUTOMATIC1111's prompt weights (generation/weights.py), applied by compel to the
    # output of a text encoder whose every token has its own embedding (CLIP's, the offline
    # model's T5). Not SDXL yet: its two encoders and pooled embedding go to the pipeline as text.
    prompt_weights: bool = False
    # How to put the weights in place where they are not one hub download (clip-guided: an
    # autoencoder and a CLIP, put together in one folder); shown when they are missing.
    setup: str = ""

    def local_folder(self):
        return Path(settings.PARTYHUB_MODELS_DIR) / self.name

    def weights_source(self):
        """The folder under PARTYHUB_MODELS_DIR if it holds weights, else the bundled folder,
        else the hub id if the local Hugging Face cache holds it. Raises WeightsMissing, which
        says where it looked and how to fetch them, when none does: nothing is downloaded."""
        source = self._find_weights()
        if source is None:
            raise WeightsMissing(self._missing_message())
        return source

    def is_available(self):
        """Whether the weights are on this machine (nothing is ever downloaded to answer)."""
        return self.name in (OVERHEAD_PROBE, OVERHEAD_PICTURES) or self._find_weights() is not None

    def _find_weights(self):
        folder = self.local_folder()
        if (folder / self.index_file).exists():
            return folder
        if self.bundled:
            return self.bundled if (self.bundled / self.index_file).exists() else None
        if self.source and in_hub_cache(self.source, self.index_file):
            return self.source
        return None

    def _missing_message(self):
        # Render.fail keeps 500 characters: the way to fix it comes first, the places after.
        folder = self.local_folder()
        if self.bundled:
            return (
                f"{self.name} has no weights here: the folder shipped with PartyHub "
                f"({self.bundled}) has no {self.index_file}, nor has {folder}. docs/models.md "
                "says how to train it."
            )
        if self.setup:
            return f"{self.name} has no weights here ({folder / self.index_file}): {self.setup}"
        return (
            f"{self.name} has no weights here, and PartyHub never downloads at run time; fetch "
            f"them once with `hf download {self.source} --local-dir {folder}`. Looked for "
            f"{folder / self.index_file} and for {self.source} in the Hugging Face cache "
            f"({hub_cache()})."
        )

    def as_dict(self):
        return {
            "name": self.name,
            "title": self.title,
            "family": self.family,
            "modes": list(self.modes),
            "defaults": self.defaults,
            "limits": {key: list(bounds) for key, bounds in self.limits.items()},
            "samplers": list(self.samplers),
            "available": self.is_available(),
            "offline": self.offline,
            "note": self.note,
            "token_limit": token_limit(self),
            "prompt_weights": self.prompt_weights,
        }


def _limits(size, steps, guidance):
    return {"width": size, "height": size, "steps": steps, "guidance": guidance, "count": (1, 8)}


# The turbo models are adversarially distilled: 1-4 steps and no classifier-free guidance.
TURBO_DEFAULTS = {"width": 512, "height": 512, "steps": 1, "guidance": 0.0, "sampler": "Euler a"}
TURBO_LIMITS = _limits((256, 1024), (1, 4), (0.0, 0.0))

# A clip-guided render starts from grey with noise, or from an image (img2img): nothing else.
CLIP_GUIDED_MODES = ("txt2img", "img2img")
CLIP_GUIDED_DEFAULTS = {"guidance": 0.0, "sampler": clip_guided.SAMPLER}

PRESETS = {
    preset.name: preset
    for preset in [
        Preset(
            name=OFFLINE,
            family="diffusion",
            pipeline="StableDiffusionPipeline",
            source="",
            bundled=BUNDLED_WEIGHTS / "diffusion",
            title="Offline shapes (bundled)",
            defaults={
                "width": 128,
                "height": 128,
                "steps": 20,
                "guidance": 5.0,
                "sampler": "Euler a",
            },
            # Trained at 128x128: smaller sizes are quick and crude, larger ones repeat scenes.
            limits=_limits((64, 256), (1, 50), (0.0, 20.0)),
            offline=True,
            previews_from_latents=True,
            prompt_weights=True,
            note="A small Stable Diffusion pipeline shipped with PartyHub and trained on a world "
            "of drawn shapes: it draws one or two circles, squares, triangles, stars, rings, "
            "crosses, hearts, diamonds or moons in ten colours, placed and styled as asked "
            '("a small red star above a blue square on a white background, outlined"). '
            "It knows nothing else; point PartyHub at real weights for pictures of the world.",
        ),
        Preset(
            name="sd-turbo",
            family="diffusion",
            pipeline="StableDiffusionPipeline",
            source="stabilityai/sd-turbo",
            preview_decoder=("taesd", "madebyollin/taesd"),
            title="SD-Turbo",
            defaults=TURBO_DEFAULTS,
            limits=TURBO_LIMITS,
            prompt_weights=True,
        ),
        Preset(
            name="sdxl-turbo",
            family="diffusion",
            pipeline="StableDiffusionXLPipeline",
            source="stabilityai/sdxl-turbo",
            modes=("txt2img", "img2img", "inpaint", "variation"),
            text_tokenizers=("tokenizer", "tokenizer_2"),  # two CLIP text encoders
            preview_decoder=("taesdxl", "madebyollin/taesdxl"),
            title="SDXL-Turbo",
            defaults=TURBO_DEFAULTS,
            limits=TURBO_LIMITS,
        ),
        Preset(
            name="sd15",
            family="diffusion",
            pipeline="StableDiffusionPipeline",
            source="stable-diffusion-v1-5/stable-diffusion-v1-5",
            preview_decoder=("taesd", "madebyollin/taesd"),
            title="Stable Diffusion 1.5",
            defaults={
                "width": 512,
                "height": 512,
                "steps": 25,
                "guidance": 7.0,
                "sampler": "DPM++ 2M Karras",
            },
            limits=_limits((256, 1024), (1, 150), (0.0, 30.0)),
            prompt_weights=True,
        ),
        Preset(
            name="offline-ar",
            family="autoregressive",
            pipeline="GPT2LMHeadModel",
            source="",
            bundled=BUNDLED_WEIGHTS / "autoregressive",
            index_file="config.json",
            title="Offline shapes, token by token (bundled)",
            modes=("txt2img",),
            # Fixed by the weights (offline/autoregressive.py): 16x16 VQ tokens, 4 px each.
            defaults={
                "width": 64,
                "height": 64,
                "steps": 256,
                "guidance": 3.0,
                "sampler": TOKEN_SAMPLER,
            },
            limits=_limits((64, 64), (256, 256), (1.0, 10.0)),
            samplers=(TOKEN_SAMPLER,),
            # offline/autoregressive.py cuts the caption to TEXT_TOKENS, this tokenizer's
            # model_max_length (24).
            text_tokenizers=("tokenizer",),
            offline=True,
            note="The DALL-E recipe at the size of a CPU, shipped with PartyHub: a GPT-2 writes "
            "a 64x64 picture of the world of drawn shapes as 256 image tokens, one at a time, "
            "and a VQ decoder turns them into pixels. Size and steps are fixed; no negative "
            "prompt.",
        ),
        Preset(
            name="offline-clip-guided",
            family="clip-guided",
            pipeline="VQModel",
            source="",
            bundled=BUNDLED_WEIGHTS / "clip-guided",
            index_file=clip_guided.CONFIG_FILE,
            title="Offline shapes, guided by CLIP (bundled)",
            modes=CLIP_GUIDED_MODES,
            # Fixed by the weights: the VQ tokenizer and the CLIP both work at 64x64. `steps`
            # are the optimiser's; CLIP steers, so there is no classifier-free guidance.
            defaults={**CLIP_GUIDED_DEFAULTS, "width": 64, "height": 64, "steps": 100},
            limits=_limits((64, 64), (1, 500), (0.0, 0.0)),
            samplers=(clip_guided.SAMPLER,),
            text_tokenizers=(),  # the CLIP's own (generation/tokens.py)
            offline=True,
            note="VQGAN+CLIP at the size of a CPU, shipped with PartyHub: no model here learned "
            "to draw from words. The offline CLIP looks at a picture made of the offline "
            "token model's VQ codes, and an optimiser changes the codes step by step until CLIP "
            "finds the prompt in it; every step is a frame the room watches. The offline CLIP "
            "knows only the world of shapes, and is easily pleased: docs/models.md measures "
            "how often the pictures show what was asked. Size fixed; no guidance scale.",
        ),
        Preset(
            name="vqgan-clip",
            family="clip-guided",
            pipeline="VQModel",
            source="",
            index_file=clip_guided.CONFIG_FILE,
            title="VQGAN+CLIP",
            modes=CLIP_GUIDED_MODES,
            defaults={**CLIP_GUIDED_DEFAULTS, "width": 256, "height": 256, "steps": 200},
            limits=_limits((128, 512), (1, 1000), (0.0, 0.0)),
            samplers=(clip_guided.SAMPLER,),
            text_tokenizers=(),
            setup="put a diffusers VQModel folder and an open_clip checkpoint in that folder "
            f"and name them in its {clip_guided.CONFIG_FILE}; docs/models.md, "
            '"CLIP-guided", shows how.',
            note="CLIP-guided images, the 2021 way: any diffusers VQModel draws, an open_clip "
            "model steers, and an optimiser changes the picture step by step towards the "
            "prompt; every step is a frame the room watches. Slow (hundreds of steps), dreamlike "
            "rather than faithful; no guidance scale.",
        ),
        Preset(
            name="janus-pro-1b",
            family="autoregressive",
            pipeline="JanusForConditionalGeneration",
            source="deepseek-community/Janus-Pro-1B",
            index_file="config.json",
            title="Janus-Pro 1B",
            modes=("txt2img",),
            # Fixed by the weights (autoregressive.geometry): 24x24 VQ tokens, 16 px each. One
            # step is one token, so `steps` is the token count and progress counts tokens.
            defaults={
                "width": 384,
                "height": 384,
                "steps": 576,
                "guidance": 5.0,  # the checkpoint's own generation_config
                "sampler": TOKEN_SAMPLER,
            },
            limits=_limits((384, 384), (576, 576), (1.0, 10.0)),
            samplers=(TOKEN_SAMPLER,),
            # JanusProcessor does not truncate: the whole prompt goes in, and 1000 characters
            # (at most about 1000 tokens) and the 576 image tokens fit its language model's
            # context of thousands.
            text_tokenizers=(),
            note="Autoregressive: writes a 384x384 image as 576 image tokens, sampled one at a "
            "time from the full softmax with classifier-free guidance against a blanked prompt. "
            "Size and steps (the token count) are fixed; no negative prompt.",
        ),
    ]
}

# Measures PartyHub's own overhead in bench/latency.py: blank images, no model, no time.
PROBE = Preset(
    name=OVERHEAD_PROBE,
    family="diffusion",
    pipeline="",
    source="",
    title="Overhead probe (blank images, benchmarks only)",
    modes=("txt2img",),
    defaults={"width": 64, "height": 64, "steps": 1, "guidance": 0.0, "sampler": "Euler a"},
    limits=_limits((64, 512), (1, 50), (0.0, 20.0)),
    offline=True,
    text_tokenizers=(),  # no text encoder
    note="Renders blank images instantly; enabled by PARTYHUB_OVERHEAD_PROBE for benchmarks.",
)
# The same with pictures that have real renders' content, for bench/worker.py --overhead: what
# encoding, storing and copying cost depends on what the images hold, and blank ones hold nothing.
PROBE_PICTURES = replace(
    PROBE,
    name=OVERHEAD_PICTURES,
    title="Overhead probe (natural-like pictures, benchmarks only)",
    note="Renders cached natural-like pictures instantly; enabled by PARTYHUB_OVERHEAD_PROBE for "
    "benchmarks.",
)


def all_presets():
    presets = dict(PRESETS)
    if settings.PARTYHUB_OVERHEAD_PROBE:
        presets[PROBE.name] = PROBE
        presets[PROBE_PICTURES.name] = PROBE_PICTURES
    return presets


def get_preset(name):
    return all_presets().get(name)


def default_preset():
    return get_preset(settings.PARTYHUB_DEFAULT_MODEL)
