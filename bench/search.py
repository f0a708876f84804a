"""Search by meaning over many images: how long one search takes, and where the time goes.

Builds a CLIP model of a real architecture with random weights (default ViT-B-32: 512-dim
embeddings; nothing downloaded) and saves it as a checkpoint the app loads like real weights.
Fills one party with N images (default 10 000) whose embeddings are random L2-normalised
vectors of that size, in the configured database: SQLite in a fresh temporary folder, or the
database DATABASE_URL names (it must exist; it is migrated, and the party is deleted after).
Then times, each `--repeat` times after one warm-up:

- text:    the CLIP text encoder on a query not seen before (scoring.text_embedding)
- read:    reading the party's N embeddings from the database
- numpy:   the cosine similarities and the ranking alone, over embeddings already in memory
- rank:    search.rank, i.e. read + numpy
- meaning: a whole search by meaning with a new query (search.search: text, rank, 50 results)
- words:   a whole search by prompt words (q=empty chair), newest 50 first

This is a benchmark, not a test:

    .venv/bin/python bench/search.py [--images 10000] [--repeat 20] [--clip ViT-B-32]
    createdb -h 127.0.0.1 -U postgres partyhub_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partyhub_bench .venv/bin/python bench/search.py
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = (
    "empty chair old people bench rain window room light shadow city night river garden "
    "cat dog moon sea storm forest mirror door stairs red blue golden quiet lonely crowd "
    "street train station winter summer snow fog lamp table bed wall clock portrait "
    "landscape oil watercolour photo sepia neon ruins tower bridge"
).split()
IMAGES_PER_RENDER = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--clip", default="ViT-B-32", help="an open_clip architecture")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="partyhub-bench-search-"))
    checkpoint = build_clip(args.clip, scratch)
    os.environ.update(
        {
            "PARTYHUB_VAR_DIR": str(scratch),
            "PARTYHUB_CLIP_MODEL": args.clip,
            "PARTYHUB_CLIP_PRETRAINED": str(checkpoint),
            "PARTYHUB_DEVICE": "cpu",
            "PARTYHUB_AUTOPILOT": "0",
            "PARTYHUB_SEARCH_MIN_SIMILARITY": "",  # none: every image ranks, 50 results
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    os.environ.setdefault("SECRET_KEY", "bench-search-" + os.urandom(8).hex())
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    party = fill(args.images)
    try:
        timings, dim = measure(party, args.repeat)
    finally:
        delete(party)
    report = {
        "images": args.images,
        "clip": args.clip,
        "dim": dim,
        "database": connection.vendor,
        "machine": machine(),
        "ms": {name: summary(values) for name, values in timings.items()},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def build_clip(name, folder):
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(name)
    path = folder / f"{name}-random.pt"
    torch.save(model.state_dict(), path)
    return path


def fill(count):
    """A party with `count` images of random prompts and random normalised embeddings."""
    import numpy as np

    from generation import scoring
    from partyhub.models import Image, Party, Prompt, Render

    rng = np.random.default_rng(0)
    party, host = Party.start(topic="benchmark", session_key="bench", host_name="Bench")
    dim = scoring.text_embedding("probe").shape[0]
    renders_needed = -(-count // IMAGES_PER_RENDER)
    prompts = Prompt.objects.bulk_create(
        Prompt(
            party=party,
            author=host,
            text=" ".join(rng.choice(WORDS, 6)),
            params={"model": "offline", "seed": n},
        )
        for n in range(renders_needed)
    )
    renders = Render.objects.bulk_create(
        Render(party=party, prompt=p, params=p.params, status=Render.Status.DONE) for p in prompts
    )
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Image.objects.bulk_create(
        (
            Image(
                render=renders[n // IMAGES_PER_RENDER],
                party=party,
                index=n % IMAGES_PER_RENDER,
                file=f"parties/{party.code}/r{renders[n // IMAGES_PER_RENDER].pk}-{n}.png",
                seed=n,
                width=512,
                height=512,
                embedding=scoring.embedding_bytes(vectors[n]),
            )
            for n in range(count)
        ),
        batch_size=1000,
    )
    return party


def delete(party):
    from partyhub.models import Image, Prompt, Render

    # Prompts protect their authors (and parents): rows go leaves first.
    Image.objects.filter(party=party).delete()
    Render.objects.filter(party=party).delete()
    Prompt.objects.filter(party=party).delete()
    party.delete()


def measure(party, repeat):
    import numpy as np

    from generation import scoring
    from partyhub import search

    images = search.party_images(party)
    vector = scoring.text_embedding("an empty chair")
    blobs = [blob for _, blob in images.values_list("pk", "embedding")]
    counter = iter(range(10**9))

    def numpy_only():
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
        return np.argsort(-np.round(matrix @ vector, 4), kind="stable")[:50]

    cases = {
        "text": lambda: scoring.text_embedding(f"an empty chair, take {next(counter)}"),
        "read": lambda: list(images.values_list("pk", "embedding")),
        "numpy": numpy_only,
        "rank": lambda: search.rank(images, vector, 50, None),
        "meaning": lambda: search.search(
            images, search.parse({"like": f"an empty chair, take {next(counter)}"})
        ),
        "words": lambda: search.search(images, search.parse({"q": "empty chair"})),
    }
    found = len(cases["meaning"]()["results"])
    assert found == 50, found
    timings = {}
    for name, case in cases.items():
        case()  # warm-up
        values = []
        for _ in range(repeat):
            start = time.perf_counter()
            case()
            values.append((time.perf_counter() - start) * 1000)
        timings[name] = values
    return timings, vector.shape[0]


def summary(values):
    ordered = sorted(values)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]  # nearest rank
    return {"median": round(statistics.median(values), 2), "p95": round(p95, 2)}


def machine():
    import numpy as np
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


if __name__ == "__main__":
    main()
