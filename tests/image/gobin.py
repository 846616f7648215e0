"""A real Go binary with dependencies, built offline with Debian's golang-go.

Two dependencies, so ``go version -m`` has something to list: one served
by a ``file://`` GOPROXY made here (a real module zip, so the binary
records a version *and* a go.sum hash), one a local ``replace`` of a
sibling directory (recorded with ``=>``). No network: GOPROXY points only
at the directory, GOSUMDB is off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.support import services

MAIN = """package main

import (
\t"fmt"

\t"example.com/greet"
\t"example.com/local"
)

func main() { fmt.Println(greet.Hello(), local.Name()) }
"""


def build_go_binary(work: Path, ldflags: str = "") -> Path:
    """Build ``work/app`` (``-ldflags "-s -w"`` like the seed server, if asked); its path."""
    if shutil.which("go") is None:
        services.unavailable("go is not installed (apt-get install golang-go)")
    _module_proxy(work / "proxy", "example.com/greet", "v1.4.2", "Hello", '"hello"')
    local = work / "local"
    local.mkdir(parents=True)
    (local / "go.mod").write_text("module example.com/local\n\ngo 1.19\n")
    (local / "local.go").write_text('package local\n\nfunc Name() string { return "local" }\n')
    app = work / "src"
    app.mkdir()
    (app / "main.go").write_text(MAIN)
    (app / "go.mod").write_text(
        "module example.com/app\n\ngo 1.19\n\n"
        "require (\n\texample.com/greet v1.4.2\n\texample.com/local v0.3.0\n)\n\n"
        "replace example.com/local v0.3.0 => ../local\n"
    )
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GOPROXY": (work / "proxy").as_uri(),
        "GOSUMDB": "off",
        "GOCACHE": str(work / "go-cache"),
        "GOPATH": str(work / "go-path"),
    }
    out = work / "app"
    flags = ["-ldflags", ldflags] if ldflags else []
    subprocess.run(
        ["go", "build", *flags, "-o", str(out), "."], cwd=app, env=env, check=True, timeout=300
    )
    return out


def go_version_m(binary: Path) -> str:
    return subprocess.run(
        ["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True
    ).stdout


def _module_proxy(root: Path, path: str, version: str, func: str, value: str) -> None:
    """A GOPROXY directory serving one module version (the layout `go help goproxy` gives)."""
    at = root / path / "@v"
    at.mkdir(parents=True)
    gomod = f"module {path}\n\ngo 1.19\n"
    (at / "list").write_text(version + "\n")
    (at / f"{version}.info").write_text(
        json.dumps({"Version": version, "Time": "2024-01-02T03:04:05Z"})
    )
    (at / f"{version}.mod").write_text(gomod)
    name = path.rsplit("/", 1)[-1]
    with zipfile.ZipFile(at / f"{version}.zip", "w") as z:
        z.writestr(f"{path}@{version}/go.mod", gomod)
        z.writestr(
            f"{path}@{version}/{name}.go",
            f"package {name}\n\nfunc {func}() string {{ return {value} }}\n",
        )
