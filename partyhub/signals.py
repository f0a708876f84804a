"""Signals other apps listen to, so the party core does not import them."""

from django.dispatch import Signal

# Sent inside the transaction that ends a render, with `render` and, for a `done` one, `images`
# (as_dict; None otherwise).
render_finished = Signal()

# Sent inside the transaction that queues a render, with `render`: the render job
# (partyhub/jobs/dispatch.py) hands it to a worker once the transaction commits.
render_queued = Signal()
