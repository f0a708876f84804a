import os
import threading

# PartyHub never downloads at run time (weights are fetched once, with `hf download`). Every
# from_pretrained passes local_files_only=True; this makes huggingface_hub itself refuse to reach
# the hub for anything else (open_clip's tokenizers and configs, a library's own lookups). It is
# read once, when huggingface_hub is first imported, so it is set here, where the engine is first
# imported (by Django's app loading, or by a script that uses the engine alone), before anything
# here imports huggingface_hub; and set, not defaulted: downloading at run time is no option.
# transformers and diffusers take it from huggingface_hub (TRANSFORMERS_OFFLINE is only an alias).
os.environ["HF_HUB_OFFLINE"] = "1"

# One model loads at a time in a process: the first load imports torchvision, transformers and
# diffusers (some lazily, from inside from_pretrained), and two threads importing them at once
# (the worker's warm-up loading the default model while a request loads the CLIP for a stream's
# topic guard) can each hold a module the other waits for; Python then raises _DeadlockError,
# and the load that got it was remembered as failed for the life of the process. Reentrant: a
# clip-guided model loads its CLIP while holding it.
LOAD_LOCK = threading.RLock()
