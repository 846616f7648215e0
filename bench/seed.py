"""The seed case shared by the benchmarks: one static Go HTTP server.

wercker's docker-scratch-push turned exactly this kind of binary into a
1.2 MB image. It is built once per run with Debian's golang-go, offline;
each copy then gets a fresh 32-byte nonce so that no cache (ours, the
registry's or Docker's) can recognise bytes from an earlier measurement.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

NONCE_PLACEHOLDER = "scratchd-bench-nonce-0123456789a"  # 32 bytes, replaced per copy
GO_SERVER = """package main

import (
\t"fmt"
\t"net/http"
)

var nonce = "unset"

func main() {
\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
\t\tfmt.Fprintln(w, "ok", nonce)
\t})
\thttp.ListenAndServe("127.0.0.1:5000", nil)
}
"""


def seed_maker(work: Path) -> Callable[[Path], Path]:
    """Build the Go server once; ``make(tree)`` writes a fresh-nonce copy as tree/app."""
    src = work / "go-src"
    src.mkdir()
    (src / "main.go").write_text(GO_SERVER)
    (src / "go.mod").write_text("module benchserver\n\ngo 1.19\n")
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOCACHE": str(work / "go-cache"),
        "GOPATH": str(work / "go-path"),
    }
    ldflags = f"-s -w -X main.nonce={NONCE_PLACEHOLDER}"
    subprocess.run(
        ["go", "build", "-ldflags", ldflags, "-o", str(work / "app"), "."],
        cwd=src,
        env=env,
        check=True,
    )
    binary = (work / "app").read_bytes()
    # the string table and the recorded -ldflags both hold it: replace every copy
    assert NONCE_PLACEHOLDER.encode() in binary

    def make(tree: Path) -> Path:
        tree.mkdir(parents=True)
        fresh = binary.replace(NONCE_PLACEHOLDER.encode(), secrets.token_hex(16).encode())
        (tree / "app").write_bytes(fresh)
        (tree / "app").chmod(0o755)
        return tree

    return make
