"""The bundled offline model family and the procedurally drawn world it is trained on.

No Django imports here: the package is used by training scripts, tests and (later) the
generation engine alike.
"""
