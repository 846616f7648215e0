"""How large a wercker.yml may be: refused before any parsing.

YAML parsing costs far more than the file's size (a 50 MB file took 65 s of
CPU and 1.3 GB of memory in the daemon), and a commit is anyone's input, so
the size is checked on the raw bytes first. Real wercker.yml files are a few
KB; 1 MiB leaves room for generated ones.
"""

from __future__ import annotations

from scratchd.errors import PipelineSyntaxError

MAX_PIPELINE_FILE = 1 << 20  # bytes; documented in the README's Security section


def check_size(data: bytes, path: str) -> None:
    """Raise :class:`PipelineSyntaxError` when ``data`` is over :data:`MAX_PIPELINE_FILE`."""
    if len(data) > MAX_PIPELINE_FILE:
        raise PipelineSyntaxError(
            f"file is {len(data)} bytes, larger than the {MAX_PIPELINE_FILE}-byte (1 MiB) "
            "limit for a pipeline file; refused without parsing",
            path=path,
            line=1,  # a position lint and the daemon both print, so the text is the same
            column=1,
        )
