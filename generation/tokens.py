"""How many tokens a prompt is to a model's text encoder, and how many the encoder reads.

A Stable Diffusion pipeline cuts every prompt to its tokenizer's `model_max_length` (diffusers'
`encode_prompt` logs the words it dropped and renders the rest), the offline autoregressive
model pads or cuts its caption to the same 24 tokens, and open_clip's tokenizer cuts what a
clip-guided model's CLIP reads to its `context_length`. PartyHub refuses such text instead
(`prompt_too_long`), counting with the tokenizer the model itself loads: only the tokenizer (a
few milliseconds, then kept per preset), from where the preset's weights are, never downloaded.

Counts and limits leave out the start and end tokens the tokenizer adds around every prompt:
they are the encoder's, not the writer's, so a limit of 22 is 22 tokens a person may write.
A prompt with weights (`weighted`) counts as the encoder gets it from compel: each piece of text
between the weight syntax tokenized on its own, the brackets and numbers no tokens at all.
"""

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

from generation import LOAD_LOCK, weights
from generation.errors import Refused

log = logging.getLogger(__name__)

# A fast tokenizer is one Rust object; encoding on two threads at once (Daphne's sync views, the
# consumers' database threads) can trip its "Already borrowed" check.
_lock = threading.Lock()


@dataclass(frozen=True)
class _Window:
    tokenizer: object
    size: int  # model_max_length: what the encoder reads, start and end tokens included
    specials: int  # the start and end tokens every encoded prompt carries

    @property
    def limit(self):
        return self.size - self.specials

    def count(self, text):
        if hasattr(self.tokenizer, "context_length"):  # open_clip's: encode adds no specials
            return len(self.tokenizer.encode(text))
        # verbose=False: no "sequence length is longer than" warning for text we refuse anyway.
        return len(self.tokenizer(text, verbose=False).input_ids) - self.specials


def token_limit(preset):
    """The most tokens a prompt may have for `preset`, start and end tokens left out; None where
    nothing is cut: a model that reads the whole prompt (Janus), no text encoder (the overhead
    probe), or no weights on this server (it is refused as `model_unavailable` anyway)."""
    windows = _windows(preset)
    return min(window.limit for window in windows) if windows else None


def token_count(preset, text, weighted=False):
    """How many tokens `text` is for `preset` (the most over its tokenizers; SDXL has two), start
    and end tokens left out; None where `token_limit` is None. `weighted`: read with prompt
    weights (refused as `invalid_prompt` if their syntax is malformed)."""
    windows = _windows(preset)
    if not windows:
        return None
    pieces = [piece for piece, _ in weights.parse(text).fragments] if weighted else [text]
    with _lock:
        return max(sum(window.count(piece) for piece in pieces) for window in windows)


def too_long(preset, field, text, weighted=False):
    """The sentence refusing `text` (named `field`) if the preset's encoder would cut it, else
    None."""
    limit = token_limit(preset)
    if limit is None or not text:
        return None
    count = token_count(preset, text, weighted)
    if count <= limit:
        return None
    windows = _windows(preset)
    whose = "its text encoders'" if len(windows) > 1 else "its text encoder's"
    size = min(window.size for window in windows)
    return (
        f"{field} is {count} tokens; {preset.name} reads at most {limit} ({whose} {size} less "
        f"the start and end tokens). Shorten it by {count - limit}: a token is a word, a piece "
        "of a longer or rarer word, or a punctuation mark."
    )


def refuse_too_long(preset, field, text, weighted=False):
    """Raise `prompt_too_long` if the preset's text encoder would cut `text`."""
    message = too_long(preset, field, text, weighted)
    if message:
        raise Refused("prompt_too_long", message)


def _windows(preset):
    clip_guided = preset.family == "clip-guided"
    if not (preset.text_tokenizers or clip_guided) or not preset.is_available():
        return ()
    try:
        with LOAD_LOCK:  # a first load imports libraries, as a model's does (generation/__init__)
            if clip_guided:
                return _load_clip(str(preset.weights_source()))
            return _load(preset.name, str(preset.weights_source()), preset.text_tokenizers)
    except Exception as error:  # whatever makes the folder unreadable
        # The pipeline loads these very files the same way, so it cannot load either: its
        # render fails with the reason and no prompt is cut. Nothing to count against here, and
        # the models list and the composer keep working.
        log.warning("cannot read the tokenizer of %s: %s", preset.name, error)
        return ()


@lru_cache(maxsize=8)
def _load_clip(source):
    from generation.clip_guided import text_tokenizer

    tokenizer = text_tokenizer(source)
    if not hasattr(tokenizer, "encode"):
        # A Hugging Face tokenizer behind open_clip's (SigLIP's and others'): nothing counted
        # here yet, so the render is refused rather than its prompt cut.
        raise OSError(f"cannot count tokens with {type(tokenizer).__name__}")
    return (_Window(tokenizer, tokenizer.context_length, 2),)


@lru_cache(maxsize=32)
def _load(name, source, subfolders):
    # Every preset that cuts its prompt loads transformers' CLIPTokenizer (model_index.json says
    # so for the diffusers ones; offline/autoregressive.py loads it itself). Imported here: the
    # web server imports transformers only once a prompt is counted.
    from transformers import CLIPTokenizer

    windows = []
    for subfolder in subfolders:
        tokenizer = CLIPTokenizer.from_pretrained(
            source, subfolder=subfolder, local_files_only=True
        )
        specials = len(tokenizer("").input_ids)
        if len(tokenizer) <= specials:
            # transformers builds a tokenizer of nothing but its start and end tokens from a
            # folder that lacks the files, rather than raise.
            raise OSError(f"no tokenizer files in {source}/{subfolder}")
        windows.append(_Window(tokenizer, tokenizer.model_max_length, specials))
    return tuple(windows)
