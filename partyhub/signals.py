"""Signals other apps listen to, so the party core does not import them."""

from django.dispatch import Signal

# Sent inside the transaction that ends a render `done`, with `render` and `images` (as_dict).
render_done = Signal()
