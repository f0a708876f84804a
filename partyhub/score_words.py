"""Where the room turns a CLIP score into words ("matches its prompt: high").

Scores are raw cosine similarities (docs/protocol.md), and what counts as high depends on the
CLIP model that made them, so the cut-offs are per model: (medium from, high from), for the
image against its prompt and against the party's topic.
"""

from django.conf import settings

# Real CLIP models (OpenAI's and LAION's ViT-B/32, ViT-L/14). LAION-400M kept an image and its
# caption as matching when their ViT-B/32 similarity was at least 0.3 (LAION-5B: 0.28 for
# English), while an image and an unrelated caption score about 0.1 to 0.2. A topic is a word
# or two ("loneliness"), which CLIP matches less closely than a description: a notch lower.
CLIP_LEVELS = {"prompt": (0.2, 0.3), "topic": (0.18, 0.25)}

# The bundled offline CLIP (docs/models.md) is far more certain about its small world. Measured
# on 300 held-out drawn scenes: a picture against its own caption 0.59 to 0.75 (5% and 95%
# quantiles; renders of the offline model 0.64 to 0.82 in a played party), against another
# scene's caption -0.42 to 0.35. So high from 0.55, under the 5% quantile of the true caption,
# and medium from 0.35, the 95% quantile of a wrong one. Its topics: the "Themes" table of
# docs/models.md, pictures on a theme 0.05 to 0.63 and off it -0.46 to 0.23.
OFFLINE_CLIP_LEVELS = {"prompt": (0.35, 0.55), "topic": (0.1, 0.3)}


def score_levels():
    """The cut-offs for this server's CLIP model, or None when it scores nothing."""
    if not settings.PARTYHUB_CLIP_PRETRAINED:
        return None
    if settings.PARTYHUB_CLIP_MODEL == settings.OFFLINE_CLIP.name:
        return OFFLINE_CLIP_LEVELS
    return CLIP_LEVELS
