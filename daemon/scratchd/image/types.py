"""The built image as the rest of scratchd sees it.

This is the contract between the image builder and its consumers (layout
writers, the registry client): an image is a manifest's exact bytes plus the
blobs it names, each readable as a stream. Layers stay on disk; only the
small config lives in memory.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from scratchd.image.inventory import FileEntry
from scratchd.models import Descriptor

#: A parsed JSON document (manifest, index, SBOM, statement): its fields are checked
#: one by one where they are read, so the values stay ``Any``.
JSONDoc = dict[str, Any]


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob: bytes in memory (config) or a file (layers)."""

    descriptor: Descriptor
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is None:
            raise ValueError(f"blob {self.descriptor.digest} has neither data nor path")
        return open(self.path, "rb")


@dataclass(frozen=True)
class Image:
    """A single-platform image: manifest bytes, config blob, layer blobs.

    ``manifest`` holds the exact bytes that are hashed and pushed; never
    re-serialise them, or the digest changes. ``files`` is what the bake
    recorded of the layer's files when asked to (for the SBOM); None when not.
    """

    manifest: bytes
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]
    files: tuple[FileEntry, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.manifest))

    def blobs(self) -> tuple[Blob, ...]:
        """Config first, then layers: the order a registry push uploads them."""
        return (self.config, *self.layers)
