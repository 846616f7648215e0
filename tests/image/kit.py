"""Shared by the image builder tests: trees on disk, layer readers, judge tools."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

from scratchd.image.types import Image
from tests.support.services import unavailable


def static_busybox() -> Path:
    """Debian's busybox-static: a static binary that runs in a FROM-scratch image."""
    path = shutil.which("busybox")
    if path is None:
        unavailable("busybox is not installed (apt-get install busybox-static)")
    return Path(path).resolve()


def tool(name: str) -> str:
    """A judge binary (umoci, skopeo); missing is a failure under CI."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (apt-get install {name})")
    return path


def make_tree(root: Path, files: dict[str, bytes | str | None], modes: dict | None = None) -> Path:
    """Create ``root`` with ``files`` (``None`` = directory, ``"->x"`` = symlink to x)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif isinstance(content, str) and content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        if modes and name in modes:
            path.chmod(modes[name])
    return root


def layer_members(image: Image) -> list[tarfile.TarInfo]:
    """The layer's tar headers in stored order (decompressing gzip or zstd)."""
    with _layer_tar(image) as tar:
        return tar.getmembers()


def layer_contents(image: Image) -> dict[str, bytes]:
    """Regular files of the layer, name → bytes."""
    with _layer_tar(image) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def _layer_tar(image: Image) -> tarfile.TarFile:
    blob = image.layers[0]
    raw = blob.path.read_bytes()
    if blob.descriptor.media_type.endswith("zstd"):
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    else:
        data = gzip.decompress(raw)
    return tarfile.open(
        fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape"
    )


def config_of(image: Image) -> dict:
    return json.loads(image.config.data)


def manifest_of(image: Image) -> dict:
    return json.loads(image.manifest)
