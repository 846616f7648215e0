"""The sample project of ``scratchd demo``: a tiny static program and its wercker.yml.

A FROM-scratch image has no libc and no shell, so its program must be a
static binary. The demo makes one honestly, on the machine it runs on:

- with a C compiler that links statically (Debian: ``gcc`` + ``libc6-dev``),
  the build step compiles ``hello.c`` with ``cc -static``;
- otherwise, with Debian's ``busybox-static``, the build step copies that
  static binary and the image runs ``busybox echo``;
- otherwise the demo says which package to install. Nothing precompiled is
  shipped inside scratchd.

Commits are made with pygit2, so the demo needs no ``git`` configuration.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PT_INTERP = 3  # ELF program header type naming the dynamic loader


@dataclass(frozen=True)
class Payload:
    """What the sample repository holds and how its program is made."""

    how: str  # one line for the user
    files: dict[str, str]


def choose_payload(prefer: str = "auto") -> Payload | None:
    """The C compiler route if it works here, else static busybox, else None
    (the CLI then reports :func:`no_payload_reason`).

    ``prefer`` is ``"auto"``, ``"cc"`` or ``"busybox"`` (only that route is tried).
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if prefer in ("auto", "cc") and cc and _links_static(cc):
        return Payload(
            f"hello.c compiled with `{cc} -static` by the build step",
            {"hello.c": _asset("hello.c"), "wercker.yml": _asset("wercker-cc.yml")},
        )
    busybox = shutil.which("busybox") or "/bin/busybox"
    if prefer in ("auto", "busybox") and Path(busybox).is_file() and is_static_elf(Path(busybox)):
        yml = _asset("wercker-busybox.yml").replace("@BUSYBOX@", busybox)
        return Payload(f"no static C toolchain: the image carries {busybox}", {"wercker.yml": yml})
    return None


def no_payload_reason(prefer: str = "auto") -> str:
    """Why :func:`choose_payload` found nothing, and what to install."""
    if prefer != "auto":
        return f"the {prefer} payload cannot be made on this machine"
    return (
        "scratchd demo needs a C compiler that links statically (apt-get install gcc "
        "libc6-dev) or a static busybox (apt-get install busybox-static)"
    )


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _links_static(cc: str) -> bool:
    """Whether ``cc -static`` really produces a program here (libc.a may be missing)."""
    with tempfile.TemporaryDirectory(prefix="scratchd-cc-") as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("int main(void) { return 0; }\n")
        try:
            done = subprocess.run(
                [cc, "-static", "-o", str(Path(tmp) / "t"), str(src)],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


def is_static_elf(path: Path) -> bool:
    """An ELF executable without a PT_INTERP header needs no dynamic loader."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        endian = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = (struct.unpack_from(endian + "I", table, i * phentsize)[0] for i in range(phnum))
    return PT_INTERP not in types


def create_repository(path: Path, payload: Payload) -> None:
    """An empty repository whose work tree holds the sample files (not committed yet)."""
    import pygit2

    pygit2.init_repository(str(path), initial_head="main")
    for name, text in payload.files.items():
        (path / name).write_text(text)
    (path / "README").write_text(
        "A sample project made by `scratchd demo`. Edit, commit, and watch the daemon build.\n"
    )


def commit_all(path: Path, message: str) -> str:
    """Commit every file of the work tree on the current branch; returns the sha."""
    import pygit2

    repo = pygit2.Repository(str(path))
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    author = pygit2.Signature("scratchd demo", "demo@scratchd.invalid")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", author, author, message, tree, parents))
