"""Provenance written into every PNG: AUTOMATIC1111's `parameters` text and PartyHub's own JSON."""

import io
import json
import zlib

from PIL.PngImagePlugin import PngInfo

# zlib's run-length strategy: as small as Pillow's default (level 6) on 512x512 pictures with
# real content, at a third of its CPU (docs/performance.md, "The worker's own cost per image").
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}


def _quote(value):
    # A1111 readers split on ", " and ": "; such values are JSON-quoted, as A1111 itself does.
    text = str(value)
    if any(ch in text for ch in ",:\n"):
        return json.dumps(text)
    return text


def a1111_parameters(prompt, params, seed):
    """The `parameters` text: the prompt, an optional negative line, then one `Key: value` line."""
    fields = {
        "Steps": params["steps"],
        "Sampler": params["sampler"],
        "CFG scale": params["guidance"],
        "Seed": seed,
        "Size": f"{params['width']}x{params['height']}",
        "Model": params["model"],
    }
    mode = params.get("mode", "txt2img")
    if mode in ("img2img", "inpaint"):
        fields["Denoising strength"] = params["strength"]
    elif mode == "walk":
        # The frames go from (prompt, Seed) to (Walk to, Walk to seed); a frame's place in the
        # walk is its index in the render, out of Walk frames.
        fields["Walk to"] = params["walk_to"] or prompt
        fields["Walk to seed"] = params["walk_seed"]
        fields["Walk frames"] = params["frames"]
    elif mode == "variation":
        # A1111's variation fields: Seed is the varied image's, the image's own is the variation.
        fields["Seed"] = params["init_seed"]
        fields["Variation seed"] = seed
        fields["Variation seed strength"] = params["strength"]
    lines = [prompt]
    if params.get("negative"):
        lines.append(f"Negative prompt: {params['negative']}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in fields.items()))
    return "\n".join(lines)


def png_bytes(image, parameters, partyhub):
    """Encode a PIL image as PNG with the `parameters` and `partyhub` tEXt chunks."""
    info = PngInfo()
    info.add_text("parameters", parameters)
    info.add_text("partyhub", json.dumps(partyhub, separators=(",", ":")))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, **PNG_OPTIONS)
    return buffer.getvalue()
