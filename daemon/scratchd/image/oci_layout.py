"""OCI image layout directories: write (or add to) one, read an image back.

A layout is what ``skopeo``/``umoci`` call ``oci:PATH:TAG``: ``oci-layout``,
``index.json`` and ``blobs/sha256/<hex>``. Each tag is an ``index.json``
entry carrying ``org.opencontainers.image.ref.name``; writing a tag that
already exists replaces its entry, so the layout never names two images
with one tag. Files appear atomically (temp file + rename), so a reader
never sees half a blob or half an index.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from scratchd.errors import ImageError
from scratchd.image.types import Blob, Image, JSONDoc
from scratchd.models import OCI_INDEX, Descriptor

if TYPE_CHECKING:
    from scratchd.image.attest import AttestedImage

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


def write_oci_layout(
    image: Image | AttestedImage, path: Path, tags: tuple[str, ...] | list[str]
) -> None:
    """Add ``image`` to the layout at ``path`` under each of ``tags``.

    An attested image (:class:`~scratchd.image.attest.AttestedImage`) brings
    its attestation manifest. The tags name the platform manifest, and the
    attestation manifest is an untagged ``index.json`` entry carrying the
    ``vnd.docker.reference.*`` annotations: a tag naming a nested index is
    "ambiguous" to umoci, while this keeps ``index.json`` itself in the shape
    buildx reads. The index blob is stored too; reading the tag back gives
    the same attested image, with the same index digest.
    """
    path = Path(path)
    blobs = path / "blobs" / "sha256"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        if not (path / "oci-layout").exists():
            _atomic_write(path / "oci-layout", LAYOUT_FILE)
        for blob in image.blobs():
            _put_blob(blob, blobs)
        for child in getattr(image, "manifests", tuple)():
            _put_blob(Blob(child.descriptor, data=child.manifest), blobs)
        _put_blob(Blob(image.descriptor, data=image.manifest), blobs)
        _atomic_write(path / "index.json", _updated_index(path, image, tags))
    except OSError as exc:
        raise ImageError(f"{path}: cannot write OCI layout: {exc.strerror or exc}") from None


def read_oci_layout(path: Path, tag: str | None = None) -> Image | AttestedImage:
    """The image tagged ``tag`` (or the only image) in the layout at ``path``."""
    path = Path(path)
    index = _load_json(path / "index.json")
    entry = _select(index, path, tag)
    manifest = _read_blob(path, entry["digest"])
    doc = json.loads(manifest)
    try:
        config_desc = _descriptor(doc["config"])
        layers = tuple(Blob(d, _blob_path(path, d.digest)) for d in map(_descriptor, doc["layers"]))
    except (KeyError, TypeError) as exc:
        raise ImageError(f"{path}: manifest {entry['digest']} is malformed ({exc})") from None
    for layer in layers:
        if layer.path is None or not layer.path.is_file():
            raise ImageError(f"{path}: layer blob {layer.descriptor.digest} is missing")
    config = Blob(config_desc, data=_read_blob(path, config_desc.digest))
    media_type = entry.get("mediaType") or doc.get("mediaType", "")
    image = Image(manifest, media_type, config, layers)
    return _with_attestation(path, image, index["manifests"])


def _with_attestation(path: Path, image: Image, manifests: list[JSONDoc]) -> Image | AttestedImage:
    """``image`` with its attestation manifest from ``index.json``, if it has one."""
    from scratchd.image.attest import REFERENCE_DIGEST, AttestedImage, image_index

    entry = next(
        (m for m in manifests if m.get("annotations", {}).get(REFERENCE_DIGEST) == image.digest),
        None,
    )
    if entry is None:
        return image
    doc = json.loads(_read_blob(path, entry["digest"]))
    try:
        config = _descriptor(doc["config"])
        layers = tuple(
            Blob(d, data=_read_blob(path, d.digest)) for d in map(_descriptor, doc["layers"])
        )
    except (KeyError, TypeError) as exc:
        raise ImageError(f"{path}: attestation {entry['digest']} is malformed ({exc})") from None
    attestation = Image(
        _read_blob(path, entry["digest"]),
        entry["mediaType"],
        Blob(config, data=_read_blob(path, config.digest)),
        layers,
    )
    return AttestedImage(image_index(image, attestation), image, attestation)


def _updated_index(path: Path, image: Image | AttestedImage, tags: Sequence[str]) -> bytes:
    index = _load_json(path / "index.json") if (path / "index.json").exists() else {}
    return index_json(image, tags, index)


def index_json(
    image: Image | AttestedImage, tags: Sequence[str], index: JSONDoc | None = None
) -> bytes:
    """``index.json`` with ``image`` (and its attestation) added under ``tags``."""
    from scratchd.image.attest import AttestedImage

    index = dict(index or {})
    manifests = [
        m for m in index.get("manifests", []) if m.get("annotations", {}).get(REF_NAME) not in tags
    ]
    attestation = image.attestation if isinstance(image, AttestedImage) else None
    image = image.image if isinstance(image, AttestedImage) else image
    desc = image.descriptor
    if tags:
        manifests += [
            Descriptor(desc.media_type, desc.digest, desc.size, ((REF_NAME, t),)).to_json()
            for t in tags
        ]
    elif not any(m.get("digest") == desc.digest for m in manifests):
        manifests.append(desc.to_json())
    if attestation is not None:  # replaces any earlier attestation of this image
        manifests = [m for m in manifests if _subject(m) != desc.digest]
        manifests.append(_attestation_entry(image, attestation))
    images = {m.get("digest") for m in manifests if _subject(m) is None}
    manifests = [m for m in manifests if _subject(m) is None or _subject(m) in images]
    index.update({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def _attestation_entry(image: Image, attestation: Image) -> JSONDoc:
    """The attestation's entry: the one the image index has, copied into ``index.json``."""
    from scratchd.image.attest import image_index

    entry: JSONDoc = json.loads(image_index(image, attestation))["manifests"][1]
    return entry


def _subject(entry: JSONDoc) -> str | None:
    """The image an attestation entry is about; None for an image entry."""
    from scratchd.image.attest import REFERENCE_DIGEST

    subject: str | None = entry.get("annotations", {}).get(REFERENCE_DIGEST)
    return subject


def _select(index: JSONDoc, path: Path, tag: str | None) -> JSONDoc:
    from scratchd.image.attest import REFERENCE_TYPE

    manifests = [
        m for m in index.get("manifests") or [] if REFERENCE_TYPE not in m.get("annotations", {})
    ]
    if tag is not None:
        for m in manifests:
            if m.get("annotations", {}).get(REF_NAME) == tag:
                return cast(JSONDoc, m)
        raise ImageError(f"{path}: no image tagged {tag!r}")
    digests = {m.get("digest") for m in manifests}
    if len(digests) != 1:
        raise ImageError(f"{path}: holds {len(digests)} images; name a tag (PATH:TAG)")
    return cast(JSONDoc, manifests[0])


def _put_blob(blob: Blob, blobs: Path) -> None:
    target = blobs / blob.descriptor.digest.removeprefix("sha256:")
    if target.exists() and target.stat().st_size == blob.descriptor.size:
        return  # content-addressed: same name, same bytes
    if blob.path is not None:
        try:
            os.link(blob.path, target)  # same filesystem: no copy at all
            return
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=".blob-", dir=blobs)
    os.fchmod(fd, 0o644)
    try:
        with os.fdopen(fd, "wb") as out, blob.open() as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; layouts are shared with other tools
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_json(file: Path) -> JSONDoc:
    try:
        return cast(JSONDoc, json.loads(file.read_bytes()))
    except FileNotFoundError:
        raise ImageError(f"{file}: not found (not an OCI image layout?)") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{file}: unreadable: {exc}") from None


def _blob_path(path: Path, digest: str) -> Path:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or not hexdigest.isalnum():
        raise ImageError(f"{path}: unsupported digest {digest!r}")
    return path / "blobs" / algo / hexdigest


def read_blob(path: Path, digest: str) -> bytes:
    """One blob of the layout at ``path``, checked against its digest."""
    return _read_blob(Path(path), digest)


def _read_blob(path: Path, digest: str) -> bytes:
    import hashlib

    file = _blob_path(path, digest)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ImageError(f"{file}: cannot read blob: {exc.strerror}") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ImageError(f"{file}: content does not match its digest")
    return data


def _descriptor(doc: JSONDoc) -> Descriptor:
    return Descriptor(
        doc["mediaType"],
        doc["digest"],
        int(doc["size"]),
        tuple(sorted((doc.get("annotations") or {}).items())),
    )
