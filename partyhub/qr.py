"""The join QR code the stage projects: scanning it opens the party room's join form."""

from urllib.parse import urlsplit

import segno

LOOPBACK_HOSTS = {"localhost", "::1"}


def join_qr_svg(url):
    """`url` as a QR code in an inline SVG, black on white with the standard four-module quiet
    zone, sized by CSS (no width or height of its own)."""
    # make_qr, not make: a short URL could otherwise become a Micro QR, which phones do not read.
    qr = segno.make_qr(url)
    return qr.svg_inline(
        dark="#000",
        light="#fff",
        border=4,
        omitsize=True,
        svgclass="join-qr",
        title=f"QR code: {url}",
    )


def is_loopback(url):
    """Whether `url` points at this machine only, so phones in the room cannot open it."""
    host = urlsplit(url).hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
