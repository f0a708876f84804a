#!/usr/bin/env bash
# The Python wheels bench/gpu.sh needs on the lent GPU machine that its image lacks, downloaded
# into .whl/ (in .gitignore, never committed) to travel with the run (`carry: [".whl"]`).
#
#     bash bench/gpu_wheels.sh          # here, once, with PyPI reachable
#
# That machine has Python 3.12 with torch, numpy, safetensors, huggingface_hub, tokenizers,
# accelerate, psutil, attrs, click, python-dateutil, requests, PyYAML, regex, tqdm and the like
# (/work/.library/device/KINDS.md), but none of PartyHub's web side. These are what the benches
# import, walked from `django.setup()` (the settings' INSTALLED_APPS: daphne installs Twisted's
# reactor as it loads; config/__init__.py loads Celery), the render job, the diffusers pipeline
# and bench/overhead.py's instruments, with CLIP scoring off (no open_clip). PartyHub's pins
# (pyproject.toml) where it pins, else the versions its .venv resolved. No dependencies are
# followed (--no-deps): each needed one is named here. transformers is the image's own (5.17,
# not the pinned 5.23.0): its 13 MB wheel would take the tree that travels (64 MiB) over its limit,
# and diffusers only loads CLIP's text encoder and the safety checker through it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WHEELS=(
    # pinned in pyproject.toml
    Django==5.2.19 channels==4.3.2 daphne==4.2.3 celery==5.7.0 dj-database-url==3.1.2
    diffusers==0.42.1 Pillow==13.0.0 django-ratelimit==4.1.0 zlib-ng==1.1.0
    open-clip-torch==3.3.0  # never imported: random_weights.py reads its CLIP vocabulary file
    # their imported dependencies, as PartyHub's .venv resolved them
    asgiref==3.13.0 sqlparse==0.6.1
    kombu==5.7.0 billiard==4.3.2 vine==5.1.0 amqp==5.4.2 tzlocal==5.4.5
    Twisted==26.10.0 autobahn==26.11.1 txaio==26.6.1 cbor2==6.3.0 hyperlink==21.0.0
    incremental==24.11.0 constantly==23.10.4 zope.interface==8.7
    cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 pyOpenSSL==26.4.0 service-identity==26.1.0
)
mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_34_x86_64 --platform manylinux1_x86_64 --platform any \
    -d .whl "${WHEELS[@]}"
du -sh .whl
