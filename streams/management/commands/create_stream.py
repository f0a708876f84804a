from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from streams.models import Stream


class Command(BaseCommand):
    help = "Create a themed live stream (its backing public party comes with it)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--topic", required=True)
        parser.add_argument("--template", default="{prompt}, {topic}")
        parser.add_argument("--style", default="")
        parser.add_argument("--negative", default="")
        parser.add_argument("--model", default="", help="a preset name; empty: the default")
        parser.add_argument("--cadence", type=float, default=6.0, help="images per minute")
        parser.add_argument("--vocabulary", nargs="*", default=[], help="autopilot words")
        parser.add_argument("--blocked-words", nargs="*", default=[])

    def handle(self, *args, **options):
        if Stream.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"A stream {options['slug']!r} exists already.")
        try:
            stream = Stream.create(
                slug=options["slug"],
                title=options["title"],
                topic=options["topic"],
                prompt_template=options["template"],
                style=options["style"],
                negative=options["negative"],
                model=options["model"],
                cadence=options["cadence"],
                vocabulary="\n".join(options["vocabulary"]),
                blocked_words="\n".join(options["blocked_words"]),
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(f"created {stream.get_absolute_url()}")
