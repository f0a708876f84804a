from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from partyhub import watermark

# Exit statuses, like grep's: 0 found, 1 not found; then the cases where no answer is possible.
EXIT = {watermark.FOUND: 0, watermark.ABSENT: 1, watermark.TOO_SMALL: 2}
EXIT_UNREADABLE = 3


class Command(BaseCommand):
    help = (
        "Read PartyHub's invisible watermark back from an image. Exit status: 0 found, "
        "1 not found, 2 too small to carry one (under 256×256 pixels), 3 not a readable image."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("check", help="Does FILE carry the watermark?")
        check.add_argument("file", type=Path)

    def handle(self, *args, action, file, **options):
        try:
            with PILImage.open(file) as image:
                image.load()
                size = image.size
                result = watermark.check(image)
        except (OSError, UnidentifiedImageError) as error:
            message = f"{file}: not a readable image ({error})"
            raise CommandError(message, returncode=EXIT_UNREADABLE) from None
        where = f"{file} ({size[0]}×{size[1]})"
        if result.status == watermark.FOUND:
            self.stdout.write(
                f"{where}: watermark found: {watermark.MESSAGE.decode()!r} "
                f"({result.matching_bits}/{watermark.BITS} bits match)"
            )
        elif result.status == watermark.ABSENT:
            self.stdout.write(
                f"{where}: no watermark ({result.matching_bits}/{watermark.BITS} bits match, "
                f"{watermark.MIN_MATCHING_BITS} needed)"
            )
        else:
            self.stdout.write(
                f"{where}: too small to carry a watermark (under {watermark.MIN_PIXELS} pixels); "
                "PartyHub exports such images unmarked"
            )
        if EXIT[result.status]:
            raise SystemExit(EXIT[result.status])
