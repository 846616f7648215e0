"""An SPDX 2.3 SBOM of a baked image: every file and the Go modules in it.

The entries are what the bake recorded while it wrote the layer
(:mod:`.inventory`: each regular file's SHA-1, which SPDX makes mandatory,
SHA-256, mode and Go build info; hard links get their target's checksums),
so they are exactly the layer's bytes and cost no second read. An image
baked without that record (or elsewhere) is read back from its layer,
streamed once. Go modules become packages with ``pkg:golang`` purls.

Nothing here reads a clock: ``created`` is the image's own creation time
and the namespace is derived from the manifest digest, so the same image
always gives byte-identical SBOM JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

from scratchd.errors import ImageError
from scratchd.image.gobuildinfo import BuildInfo, Module
from scratchd.image.inventory import FileDigest, FileEntry, Inventory
from scratchd.image.types import Blob, Image, JSONDoc

PREDICATE_SPDX = "https://spdx.dev/Document"
_NONE = "NOASSERTION"


def image_files(layer: Blob) -> tuple[FileEntry, ...]:
    """The regular files (and hard links) of one layer, sorted by name."""
    inventory = Inventory()
    try:
        with (
            _decompressed(layer) as stream,
            tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20) as tar,
        ):
            for member in tar:
                if member.isreg():
                    digest = _digest(member, tar.extractfile(member))
                    inventory.add(member.name, member.mode, digest)
                elif member.islnk():
                    inventory.link(member.name, member.mode, member.linkname)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError(
            f"layer {layer.descriptor.digest}: unreadable for the SBOM: {exc}"
        ) from None
    return inventory.entries()


def spdx_document(image: Image, *, name: str, created: str, tool: str) -> JSONDoc:
    """The SPDX 2.3 JSON document of ``image`` (as a dict; canonical JSON is the caller's)."""
    if image.files is not None:
        files = list(image.files)
    else:
        files = [f for layer in image.layers for f in image_files(layer)]
    hexdigest = image.digest.removeprefix("sha256:")
    image_id = "SPDXRef-Image"
    packages = [_image_package(image, name, files, image_id)]
    relationships = [_rel("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    file_docs: list[JSONDoc] = []
    seen: dict[tuple[str, str, str], str] = {}
    for number, entry in enumerate(files, 1):
        file_id = f"SPDXRef-File-{number}"
        file_docs.append(_file(entry, file_id))
        relationships.append(_rel(image_id, "CONTAINS", file_id))
        if entry.go is not None:
            _go_packages(entry.go, file_id, image_id, seen, packages, relationships)
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://scratchd.invalid/spdx/sha256-{hexdigest}",
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "documentDescribes": [image_id],
        "packages": packages,
        "files": file_docs,
        "relationships": relationships,
    }


def golang_purl(path: str, version: str) -> str:
    """``pkg:golang/github.com/org/mod@v1.2.3`` (purl spec: each segment percent-encoded)."""
    encoded = "/".join(quote(segment, safe="") for segment in path.split("/"))
    if version and not version.startswith("("):
        return f"pkg:golang/{encoded}@{quote(version, safe='')}"
    return f"pkg:golang/{encoded}"


def _go_packages(
    info: BuildInfo,
    file_id: str,
    image_id: str,
    seen: dict[tuple[str, str, str], str],
    packages: list[JSONDoc],
    relationships: list[dict[str, str]],
) -> None:
    main_id = _go_package(info.main or Module(info.path, ""), seen, packages, info)
    relationships.append(_rel(image_id, "CONTAINS", main_id))
    relationships.append(_rel(file_id, "GENERATED_FROM", main_id))
    stdlib = _go_package(Module("stdlib", info.go_version), seen, packages)
    relationships.append(_rel(image_id, "CONTAINS", stdlib))
    relationships.append(_rel(main_id, "DEPENDS_ON", stdlib))
    for dep in info.deps:
        dep_id = _go_package(dep, seen, packages)
        relationships.append(_rel(image_id, "CONTAINS", dep_id))
        relationships.append(_rel(main_id, "DEPENDS_ON", dep_id))


def _go_package(
    module: Module,
    seen: dict[tuple[str, str, str], str],
    packages: list[JSONDoc],
    info: BuildInfo | None = None,
) -> str:
    used = module.replace if module.replace and module.replace.version[:1] == "v" else module
    key = (module.path, used.version, used.sum)
    if key in seen:
        return seen[key]
    spdx_id = f"SPDXRef-Package-go-{len(seen) + 1}"
    seen[key] = spdx_id
    notes = [f"go.sum {used.sum}"] if used.sum else []
    if module.replace is not None:
        notes.append(f"replaced by {module.replace.path} {module.replace.version}".rstrip())
    if info is not None:
        notes.append(f"main module, built with {info.go_version}")
    package: JSONDoc = {
        "SPDXID": spdx_id,
        "name": module.path,
        "downloadLocation": _NONE,
        "filesAnalyzed": False,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": golang_purl(module.path, used.version),
            }
        ],
    }
    if used.version:
        package["versionInfo"] = used.version
    if notes:
        package["comment"] = "; ".join(notes)
    packages.append(package)
    return spdx_id


def _image_package(image: Image, name: str, files: list[FileEntry], spdx_id: str) -> JSONDoc:
    code = hashlib.sha1(  # noqa: S324 - SPDX defines the verification code with SHA-1
        "".join(sorted(f.sha1 for f in files)).encode()
    ).hexdigest()
    return {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": image.digest,
        "downloadLocation": _NONE,
        "filesAnalyzed": True,
        "packageVerificationCode": {"packageVerificationCodeValue": code},
        "primaryPackagePurpose": "CONTAINER",
    }


def _file(entry: FileEntry, spdx_id: str) -> JSONDoc:
    return {
        "SPDXID": spdx_id,
        "fileName": entry.name,
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": entry.sha1},
            {"algorithm": "SHA256", "checksumValue": entry.sha256},
        ],
        "comment": f"mode {entry.mode:04o}",
        "fileTypes": ["BINARY" if entry.go is not None else "OTHER"],
    }


def _rel(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _digest(member: tarfile.TarInfo, source: IO[bytes] | None) -> FileDigest:
    if source is None:  # extractfile() gives None only for members that are not files
        raise ImageError(f"{member.name}: a regular file without content in the layer")
    digest = FileDigest(member.size)
    while chunk := source.read(1 << 20):
        digest.update(chunk)
    return digest


@contextlib.contextmanager
def _decompressed(layer: Blob) -> Iterator[IO[bytes] | io.BufferedIOBase]:
    """A readable stream of the layer's tar, whatever its compression."""
    media_type = layer.descriptor.media_type
    with layer.open() as raw:
        if media_type.endswith("zstd"):
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw) as stream:
                yield stream
        elif media_type.endswith("gzip"):
            import gzip

            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        else:
            yield raw
