import os

# PartyHub never downloads at run time (weights are fetched once, with `hf download`). Every
# from_pretrained passes local_files_only=True; this makes huggingface_hub itself refuse to reach
# the hub for anything else (open_clip's tokenizers and configs, a library's own lookups). It is
# read once, when huggingface_hub is first imported, so it is set here, where the engine is first
# imported (by Django's app loading, or by a script that uses the engine alone), before anything
# here imports huggingface_hub; and set, not defaulted: downloading at run time is no option.
# transformers and diffusers take it from huggingface_hub (TRANSFORMERS_OFFLINE is only an alias).
os.environ["HF_HUB_OFFLINE"] = "1"
