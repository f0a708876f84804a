import os

# PartyHub never downloads at run time (weights are fetched once, with `hf download`). Every
# from_pretrained passes local_files_only=True; this makes huggingface_hub itself refuse to reach
# the hub for anything else (open_clip's tokenizers and configs, a library's own lookups). It is
# read once, when huggingface_hub is first imported, so it is set here, before the settings and
# the Celery app load anything; and set, not defaulted: downloading at run time is no option.
# transformers and diffusers take it from huggingface_hub (TRANSFORMERS_OFFLINE is only an alias).
os.environ["HF_HUB_OFFLINE"] = "1"

# Load the Celery app with Django so `@shared_task` binds to it (Celery's Django recipe).
from partyhub.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
