"""``$VAR`` expansion for the pipeline package (the function lives in :mod:`scratchd.expand`).

The runner expands step options at run time too, and may not import
``pipeline`` beyond its plan types, so the one implementation sits in a
neutral module both use.
"""

from scratchd.expand import expand

__all__ = ["expand"]
