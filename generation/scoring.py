"""CLIP scores (open_clip): how well each rendered image matches its prompt and the party's topic.

A score is the raw cosine similarity between the L2-normalised image embedding and the
L2-normalised text embedding, a float in [-1, 1] (for real CLIP models about 0.1 to 0.4 in
practice). It is stored as it is, not rescaled, so scores from one model compare across parties.

Scoring is off unless PARTYHUB_CLIP_PRETRAINED names weights, and weights are only ever read from
disk: a checkpoint file, or a pretrained tag's file already in the local Hugging Face cache.
Scores are an extra: when scoring is off, the weights are missing or the model fails, images get
null scores and the render goes on.

The same pass keeps each image's normalised embedding (float32 bytes, `embedding_bytes`), which
search by meaning compares with a query's `text_embedding`. Embeddings are only comparable within
one CLIP model: after changing PARTYHUB_CLIP_MODEL, older images rank as noise (or, with another
embedding size, not at all).

A real CLIP model has read the web's words; the bundled offline CLIP (`OFFLINE_CLIP`) knows only
the few of its world (`vocabulary`). Any other word it still embeds, as noise that lands near
some picture or other, so search asks which words it knows.

torch and open_clip are imported lazily, like in generation/pipelines.py.
"""

import functools
import logging
import os
import threading

from django.conf import settings

from generation import LOAD_LOCK

log = logging.getLogger(__name__)

OFFLINE_CLIP = "partyhub-offline-clip"  # the bundled one's PARTYHUB_CLIP_MODEL (offline/)
TEXT_CACHE_SIZE = 1024  # prompts and topics seen recently; one embedding is a few KB
EMBEDDING_DTYPE = "<f4"  # stored embeddings: little-endian float32, whatever the machine
_PRECISIONS = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}

_scorers = {}  # settings key -> Scorer, or None when it could not be loaded


class ScorerUnavailable(Exception):
    """The configured CLIP model cannot be loaded from local files."""


def image_scores(images, prompt, topic):
    """[{"score": ..., "topic_score": ..., "embedding": ...}] for each PIL image: CLIP similarity
    to `prompt` and to `topic`, and the image's normalised embedding as bytes (`embedding_bytes`).
    All are None when no scorer is configured or scoring failed."""
    return batch_image_scores([(images, prompt, topic)])[0]


def batch_image_scores(groups):
    """`image_scores` for each (images, prompt, topic) of `groups`, in order (a worker's batch
    of renders): one CLIP pass over all their images, each image scored against its own texts."""
    groups = list(groups)
    nothing = [
        [{"score": None, "topic_score": None, "embedding": None} for _ in images]
        for images, _, _ in groups
    ]
    images = [image for group_images, _, _ in groups for image in group_images]
    scorer = get_scorer()
    if scorer is None or not images:
        return nothing
    texts = [prompt for _, prompt, _ in groups] + [topic for _, _, topic in groups if topic]
    column = {text: index for index, text in enumerate(dict.fromkeys(texts))}
    try:
        embeddings, similarities = scorer.score_images(images, list(column))
    except Exception:
        log.exception("CLIP scoring failed; the images keep null scores")
        return nothing
    rows = iter(zip(embeddings, similarities, strict=True))
    return [
        [
            {
                "score": row[column[prompt]],
                "topic_score": row[column[topic]] if topic else None,
                "embedding": embedding_bytes(embedding),
            }
            for embedding, row in (next(rows) for _ in group_images)
        ]
        for group_images, prompt, topic in groups
    ]


def best_first(scores, seeds):
    """The order of a best-of render's candidates, best first: the highest CLIP score against
    the prompt. Scores equal to 4 decimals are a tie, as in search, and the lower seed wins it,
    so the choice does not hang on the last bits of a float (which can differ with the batch a
    candidate was scored in) and is the same every time."""
    return sorted(range(len(scores)), key=lambda i: (-round(scores[i], 4), seeds[i]))


def text_embedding(text):
    """The L2-normalised CLIP embedding of `text` as a float32 numpy vector, comparable with the
    stored image embeddings; None when no scorer is configured or it failed."""
    scorer = get_scorer()
    if scorer is None:
        return None
    try:
        return scorer.text_vector(text)
    except Exception:
        log.exception("CLIP text embedding failed")
        return None


def text_tokens(text):
    """(how many tokens `text` is, the most the CLIP's text encoder reads), start and end tokens
    left out: open_clip cuts a longer text without a word, so search refuses it instead. None
    when no scorer is configured, or its tokenizer cannot count (not open_clip's own BPE one)."""
    scorer = get_scorer()
    tokenizer = scorer and scorer.tokenizer
    size = getattr(tokenizer, "context_length", None)
    if not hasattr(tokenizer, "encode") or not size or getattr(tokenizer, "reduction_fn", None):
        return None
    return len(tokenizer.encode(text)), size - 2


def vocabulary():
    """The words the configured CLIP model learned, or None when it has read a language (any
    real CLIP) or none is configured: for the offline CLIP, its world's captions and themes."""
    if _settings_key() is None or settings.PARTYHUB_CLIP_MODEL != OFFLINE_CLIP:
        return None
    return _offline_words()


@functools.cache
def _offline_words():
    from offline import world

    return frozenset(world.vocabulary()) | {w for theme in world.THEMES for w in theme.split()}


def embedding_bytes(vector):
    """An embedding as it is stored in Image.embedding."""
    import numpy as np

    return np.asarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def is_configured():
    """Whether a CLIP model is configured and not known to be broken; loads nothing, so a page
    can ask cheaply (the first search by meaning loads the model)."""
    key = _settings_key()
    return key is not None and _scorers.get(key, True) is not None


def text_similarity(text, other):
    """CLIP cosine similarity of two texts; None when no scorer is configured or it failed."""
    scorer = get_scorer()
    if scorer is None:
        return None
    try:
        return scorer.text_similarity(text, other)
    except Exception:
        log.exception("CLIP text similarity failed")
        return None


def image_similarities(images, others):
    """CLIP cosine similarity of each image to each of `others` (rows: images); None when no
    scorer is configured or it failed."""
    scorer = get_scorer()
    if scorer is None or not images or not others:
        return None
    try:
        return scorer.image_similarities(images, others)
    except Exception:
        log.exception("CLIP image similarity failed")
        return None


def get_scorer():
    """The process's scorer for the current settings, loaded on first use; None if off or broken.

    A failed load is remembered, so it is logged once, not at every render.
    """
    key = _settings_key()
    if key is None:
        return None
    with LOAD_LOCK:
        if key not in _scorers:
            try:
                _scorers[key] = load_scorer(*key)
            except Exception:
                log.exception("CLIP scoring is off: could not load %s from %s", key[0], key[1])
                _scorers[key] = None
        return _scorers[key]


def _settings_key():
    pretrained = settings.PARTYHUB_CLIP_PRETRAINED
    if not pretrained:
        return None
    return (
        settings.PARTYHUB_CLIP_MODEL,
        pretrained,
        settings.PARTYHUB_CLIP_CONFIG,
        settings.PARTYHUB_DEVICE,
        settings.PARTYHUB_DTYPE,
    )


def load_scorer(model_name, pretrained, config, device, dtype):
    return Scorer(*load_clip(model_name, pretrained, config, device, dtype), device)


def load_clip(model_name, pretrained, config, device, dtype):
    """(model, preprocess, tokenizer) of an open_clip model from local files only: `pretrained`
    a checkpoint file or a pretrained tag's file in the local Hugging Face cache, `config` a
    model config JSON to register first (named after the model) or empty. What scores images,
    and what steers a clip-guided render (generation/clip_guided.py)."""
    import open_clip

    if config:
        # open_clip registers a config JSON under its file name, next to its built-in models.
        if os.path.splitext(os.path.basename(config))[0] != model_name:
            raise ScorerUnavailable(
                f"{config} registers a model named after the file, not {model_name}"
            )
        open_clip.add_model_config(config)
    checkpoint, tag_cfg = resolve_weights(model_name, pretrained)
    log.info("loading CLIP %s from %s on %s", model_name, checkpoint, device)
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name,
        pretrained=checkpoint,
        precision=_PRECISIONS[dtype] if device != "cpu" else "fp32",
        device=device,
        # A tag's own preprocessing and activation, which open_clip applies itself for a tag but
        # not for the file path we hand it.
        force_quick_gelu=tag_cfg.get("quick_gelu", False),
        image_mean=tag_cfg.get("mean"),
        image_std=tag_cfg.get("std"),
        image_interpolation=tag_cfg.get("interpolation"),
        image_resize_mode=tag_cfg.get("resize_mode"),
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(model_name)


def resolve_weights(model_name, pretrained):
    """(a local checkpoint file, the tag's open_clip config or {}) for PARTYHUB_CLIP_PRETRAINED.

    Given a tag, open_clip would call hf_hub_download, which may reach the network; instead the
    tag's file is looked up in the local Hugging Face cache only.
    """
    if os.path.isfile(pretrained):
        return pretrained, {}
    import open_clip
    from huggingface_hub import try_to_load_from_cache
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not tag_cfg:
        raise ScorerUnavailable(
            f"{pretrained!r} is neither a file nor a pretrained tag of {model_name}"
        )
    repo, filename = os.path.split(tag_cfg.get("hf_hub", ""))
    if not repo:
        raise ScorerUnavailable(
            f"{model_name} {pretrained} is not on the Hugging Face hub; download it and set "
            "PARTYHUB_CLIP_PRETRAINED to the file's path"
        )
    # The same files, in the same order of preference, as open_clip's download_pretrained_from_hf.
    filename = filename or HF_WEIGHTS_NAME
    candidates = [filename]
    if filename == HF_WEIGHTS_NAME:
        candidates.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        candidates.insert(0, filename[:-4] + ".safetensors")
    for name in candidates:
        path = try_to_load_from_cache(repo, name)
        if isinstance(path, str):
            return path, tag_cfg
    raise ScorerUnavailable(
        f"{model_name} {pretrained} is not in the local Hugging Face cache; "
        f"fetch it once with: hf download {repo} {filename}"
    )


class Scorer:
    """One loaded CLIP model. Text embeddings are cached: a party renders the same prompt and
    topic again and again, and the topic for every image."""

    def __init__(self, model, preprocess, tokenizer, device):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device = device
        self.dtype = next(model.parameters()).dtype
        # Renders of several parties may run side by side (embedded worker threads).
        self.lock = threading.Lock()
        self.text_embedding = functools.lru_cache(maxsize=TEXT_CACHE_SIZE)(self._encode_text)

    def score_images(self, images, texts):
        """The images' normalised embeddings (a float32 numpy array, one row per PIL image) and,
        for each image, a tuple of its cosine similarity with each of `texts`."""
        import torch

        with self.lock, torch.inference_mode():
            image_embeddings = self._encode_images(images)
            text_embeddings = torch.stack([self.text_embedding(text) for text in texts])
            similarities = image_embeddings @ text_embeddings.T
        return image_embeddings.cpu().numpy(), [tuple(row) for row in similarities.cpu().tolist()]

    def image_similarities(self, images, others):
        import torch

        with self.lock, torch.inference_mode():
            embeddings = self._encode_images([*images, *others])
            return (embeddings[: len(images)] @ embeddings[len(images) :].T).cpu().tolist()

    def _encode_images(self, images):
        import torch

        pixels = torch.stack([self.preprocess(image.convert("RGB")) for image in images])
        return _normalized(self.model.encode_image(pixels.to(self.device, dtype=self.dtype)))

    def text_similarity(self, text, other):
        import torch

        with self.lock, torch.inference_mode():
            return float(self.text_embedding(text) @ self.text_embedding(other))

    def text_vector(self, text):
        import torch

        with self.lock, torch.inference_mode():
            return self.text_embedding(text).cpu().numpy().copy()  # not a view of the cached one

    def _encode_text(self, text):
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer([text]).to(self.device)
            return _normalized(self.model.encode_text(tokens))[0]


def _normalized(embeddings):
    # In float32 whatever the model's precision, so the cosine is not rounded to fp16.
    embeddings = embeddings.float()
    return embeddings / embeddings.norm(dim=-1, keepdim=True)
