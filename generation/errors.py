"""What the engine raises. Callers turn these into what their users see: the web code into an
error frame or response (core.errors.refusal), the render job into a render's terminal state."""


class Refused(ValueError):
    """A prompt or parameters the engine will not render, refused before any work starts.

    `code` is stable and machine-readable (`invalid_param`, `prompt_too_long`, ...), `message`
    a sentence for people that names the field and the limit. Nothing is ever clamped or fixed
    instead, as diffusers' own `check_inputs` refuses rather than adjusts."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """The render was cancelled between two denoising steps."""


class Filtered(Exception):
    """The pipeline's safety checker flagged every image of the render."""


class GpuOutOfMemory(Exception):
    """The render did not fit in GPU memory, not even in halves."""


class BadOutput(Exception):
    """The decoded images were NaN or flat even with the VAE in float32."""


class WeightsMissing(Exception):
    """A model's weights are not on this machine; the message says where they were looked for
    and how to fetch them once."""
