"""``docker load`` archives (the format ``docker save`` writes).

The archive holds ``manifest.json`` (config path, ``RepoTags``, layer
paths) and the blobs under ``blobs/sha256/`` as recent ``docker save``
lays them out. Layers are stored still compressed: ``docker load``
decompresses each one and checks it against the config's ``diff_ids``,
so nothing is re-encoded here and the layer is copied as a stream.

An attested image also brings what an OCI layout holds (``oci-layout``,
``index.json``, the manifests and attestation blobs), as ``docker save``
of Docker 25+ does: older ``docker load`` reads only ``manifest.json`` and
ignores them, while OCI tools find the SBOM and provenance.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scratchd.errors import ImageError
from scratchd.image.options import check_docker_reference
from scratchd.image.types import Blob, Image

if TYPE_CHECKING:
    from scratchd.image.attest import AttestedImage


def write_docker_archive(
    image: Image | AttestedImage, path: Path, tags: tuple[str, ...] | list[str]
) -> None:
    """Write ``image`` to the tarball ``path``; ``tags`` are ``repo:tag`` RepoTags."""
    for tag in tags:
        check_docker_reference(tag)
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent or ".")
        os.fchmod(fd, 0o644)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write docker archive: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            _write(image, out, tags)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ImageError(f"{path}: cannot write docker archive: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(attested: Image | AttestedImage, out: BinaryIO, tags: Sequence[str]) -> None:
    from scratchd.image.attest import AttestedImage

    image = attested.image if isinstance(attested, AttestedImage) else attested
    manifest = [
        {
            "Config": _member(image.config),
            "RepoTags": list(tags) or None,
            "Layers": [_member(layer) for layer in image.layers],
        }
    ]
    # TarFile itself, not tarfile.open(): the same writer, with copybufsize in its signature.
    with tarfile.TarFile(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20
    ) as tar:
        for blob in attested.blobs():
            _add(tar, _member(blob), blob)
        if isinstance(attested, AttestedImage):
            _add_layout(tar, attested, tags)
        data = json.dumps(manifest, separators=(",", ":")).encode()
        _add(tar, "manifest.json", Blob(image.config.descriptor, data=data), len(data))


def _add_layout(tar: tarfile.TarFile, attested: AttestedImage, tags: Sequence[str]) -> None:
    from scratchd.image.oci_layout import LAYOUT_FILE, index_json

    for child in (*attested.manifests(), attested):
        blob = Blob(child.descriptor, data=child.manifest)
        _add(tar, _member(blob), blob)
    for name, data in (("oci-layout", LAYOUT_FILE), ("index.json", index_json(attested, tags))):
        _add(tar, name, Blob(attested.descriptor, data=data), len(data))


def _member(blob: Blob) -> str:
    return "blobs/sha256/" + blob.descriptor.digest.removeprefix("sha256:")


def _add(tar: tarfile.TarFile, name: str, blob: Blob, size: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size = blob.descriptor.size if size is None else size
    info.mode = 0o644
    with blob.open() as src:
        tar.addfile(info, src)
