"""Two streams on a fresh install, so `make run` has something to watch.

Which two depends on the default model: the bundled offline model knows only its world of
shapes, so its install streams themes that world can express (and its CLIP can guard); any other
model gets the photographic themes.
"""

from django.conf import settings
from django.db import migrations

from partyhub.models import new_join_code

PHOTO_SEEDS = [
    {
        "slug": "cats",
        "title": "Cats and kittens",
        "topic": "cats and kittens",
        "prompt_template": "{prompt}, a cat",
        "style": "soft light, detailed fur",
        "negative": "text, watermark",
        "vocabulary": "\n".join(
            ["sleeping", "on a windowsill", "chasing yarn", "in the snow", "tabby", "kitten"]
        ),
    },
    {
        "slug": "distant-planets",
        "title": "Landscapes of distant planets",
        "topic": "landscapes of distant planets",
        "prompt_template": "{prompt}, a landscape on a distant planet",
        "style": "wide angle, alien sky",
        "negative": "text, watermark",
        "vocabulary": "\n".join(
            ["two suns", "ringed giant on the horizon", "crystal dunes", "methane sea", "aurora"]
        ),
    },
]


# Prompts in the offline world's grammar; the template adds nothing the model never read. Their
# CLIP thresholds, fitted to the offline CLIP, are set by 0006 (the fields came later).
OFFLINE_SEEDS = [
    {
        "slug": "circles-and-rings",
        "title": "Circles and rings",
        "topic": "circles and rings",
        "prompt_template": "{prompt}",
        "vocabulary": "\n".join(
            [
                "a red circle",
                "two small yellow rings",
                "a large blue ring in the centre",
                "a white circle above a black ring",
                "a small pink circle on the left, outlined",
                "two large green circles on a purple background, striped",
            ]
        ),
    },
    {
        "slug": "warm-colours",
        "title": "Warm colours",
        "topic": "warm colours",
        "prompt_template": "{prompt}",
        "vocabulary": "\n".join(
            [
                "a red heart",
                "an orange star on a blue background",
                "a yellow moon at the top",
                "a pink square next to a red triangle",
                "two small orange diamonds, striped",
                "a large yellow circle on a purple background",
            ]
        ),
    },
]


def seeds():
    return OFFLINE_SEEDS if settings.PARTYHUB_DEFAULT_MODEL == "offline" else PHOTO_SEEDS


def seed(apps, schema_editor):
    Party = apps.get_model("partyhub", "Party")
    Stream = apps.get_model("streams", "Stream")
    for fields in seeds():
        if Stream.objects.filter(slug=fields["slug"]).exists():
            continue
        code = new_join_code()
        while Party.objects.filter(code=code).exists():
            code = new_join_code()
        party = Party.objects.create(
            code=code, topic=fields["topic"], title=fields["title"], public=True
        )
        Stream.objects.create(party=party, **fields)


class Migration(migrations.Migration):
    dependencies = [("streams", "0001_initial"), ("partyhub", "0004_render_animation")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
