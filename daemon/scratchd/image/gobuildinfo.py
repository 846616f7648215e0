"""Read the build information a Go binary carries (what ``go version -m`` prints).

Since Go 1.18 the linker writes a ``.go.buildinfo`` section: a 32-byte
header (the magic ``\\xff Go buildinf:``, pointer size, a flags byte whose
bit 1 says the strings follow inline) and then two varint-length-prefixed
strings, the Go version and the module info. The module info is the text
``go version -m`` shows, framed by two 16-byte sentinels. Parsing it here,
rather than running ``go``, keeps the SBOM free of a toolchain dependency
and lets us read binaries for any architecture.

Older binaries (pointer-based header, Go < 1.18) and non-ELF files give
``None``: an SBOM without their modules beats a failed build.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_INLINE = 0x2
_SENTINEL = 16


@dataclass(frozen=True)
class Module:
    """One module line (``mod`` or ``dep``); ``replace`` is the ``=>`` line under it."""

    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True)
class BuildInfo:
    """A Go binary's version, main package path, main module, deps and build settings."""

    go_version: str
    path: str
    main: Module | None
    deps: tuple[Module, ...]
    settings: tuple[tuple[str, str], ...] = ()


def read_build_info(data: bytes) -> BuildInfo | None:
    """The build info of the ELF binary ``data``, or None when it has none we can read."""
    section = elf_section(data, ".go.buildinfo")
    if section is None or not section.startswith(MAGIC) or len(section) < _HEADER:
        return None
    if not section[15] & _INLINE:
        return None  # Go < 1.18: strings live behind pointers
    version, offset = _varint_string(section, _HEADER)
    modinfo, _ = _varint_string(section, offset)
    if version is None or modinfo is None:
        return None
    if len(modinfo) >= 2 * _SENTINEL and modinfo[-_SENTINEL - 1 : -_SENTINEL] == b"\n":
        modinfo = modinfo[_SENTINEL:-_SENTINEL]
    return parse_modinfo(version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace"))


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    """The tab-separated ``path``/``mod``/``dep``/``=>``/``build`` lines."""
    path, main, deps, settings = "", None, [], []
    for line in text.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) > 1:
            path = fields[1]
        elif kind in ("mod", "dep") and len(fields) > 2:
            module = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
            if kind == "mod":
                main = module
            else:
                deps.append(module)
        elif kind == "=>" and len(fields) > 2 and deps:
            replaced = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
            deps[-1] = Module(deps[-1].path, deps[-1].version, deps[-1].sum, replaced)
        elif kind == "build" and len(fields) > 1:
            key, _, value = fields[1].partition("=")
            settings.append((key, value))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def elf_section(data: bytes, name: str) -> bytes | None:
    """The bytes of the ELF section ``name`` (32/64-bit, either byte order), or None."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        else:
            (shoff,) = struct.unpack_from(order + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        headers = [_section_header(data, shoff + i * shentsize, wide, order) for i in range(shnum)]
        names = headers[shstrndx]
        for name_offset, kind, offset, size in headers:
            start = names[2] + name_offset
            if data[start : data.index(b"\0", start)] == name.encode() and kind != 8:  # NOBITS
                return data[offset : offset + size]
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _section_header(data: bytes, at: int, wide: bool, order: str) -> tuple[int, int, int, int]:
    """(name offset, type, file offset, size) of one section header."""
    if wide:
        name, kind, _flags, _addr, offset, size = struct.unpack_from(order + "IIQQQQ", data, at)
    else:
        name, kind, _flags, _addr, offset, size = struct.unpack_from(order + "IIIIII", data, at)
    return name, kind, offset, size


def _varint_string(data: bytes, at: int) -> tuple[bytes | None, int]:
    length, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            end = at + length
            return (data[at:end], end) if end <= len(data) else (None, at)
    return None, at
