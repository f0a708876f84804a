"""Two streams on a fresh install, so `make run` has something to watch."""

from django.db import migrations

from partyhub.models import new_join_code

SEEDS = [
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


def seed(apps, schema_editor):
    Party = apps.get_model("partyhub", "Party")
    Stream = apps.get_model("streams", "Stream")
    for fields in SEEDS:
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
