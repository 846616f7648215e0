"""The bake cannot be tricked: no read outside its directory, no depth bomb, optional caps.

The race test is the issue's probe: a swapper thread flips a directory of
the tree with a symlink to an outside directory holding a marker file while
thousands of bakes walk the tree; no layer may ever hold the marker's bytes.
"""

from __future__ import annotations

import gzip
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scratchd.errors import ImageError
from scratchd.image.build import bake
from scratchd.image.layer import write_layer
from scratchd.image.tree import MAX_DEPTH, Limits, walk
from scratchd.models import ImageSpec


def _layer_bytes(root: Path, blobs: Path, limits: Limits | None = None) -> bytes:
    result = write_layer(root, blobs, created=0, compression="gzip", level=1, limits=limits)
    data = gzip.decompress(result.path.read_bytes())
    result.path.unlink()
    return data


# -- 8. no step can make the bake read outside its directory -------------------


class Swapper(threading.Thread):
    """Flips ``root/sub`` between a real directory and a symlink to ``outside``."""

    def __init__(self, root: Path, hold: Path, outside: Path) -> None:
        super().__init__(daemon=True)
        self.sub, self.held, self.outside = root / "sub", hold / "sub", outside
        self.stop = threading.Event()
        self.flips = 0

    def run(self) -> None:
        while not self.stop.is_set():
            os.rename(self.sub, self.held)
            os.symlink(self.outside, self.sub)
            os.unlink(self.sub)
            os.rename(self.held, self.sub)
            self.flips += 1


def test_racing_swapper_never_gets_an_outside_byte_into_a_layer(tmp_path):
    marker = secrets.token_hex(16).encode()
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("data", "a", "z"):
        (outside / name).write_bytes(marker)
    (outside / "deeper").mkdir()
    (outside / "deeper" / "data").write_bytes(marker)
    root, hold, blobs = tmp_path / "root", tmp_path / "hold", tmp_path / "blobs"
    (root / "sub" / "deeper").mkdir(parents=True)
    hold.mkdir()
    blobs.mkdir()
    for name in ("data", "a", "z"):
        (root / "sub" / name).write_bytes(b"inside")
    (root / "sub" / "deeper" / "data").write_bytes(b"inside")
    (root / "top").write_bytes(b"top")

    swapper = Swapper(root, hold, outside)
    swapper.start()
    bakes, refused, leaked, started = 0, 0, 0, time.monotonic()
    try:
        while bakes < 3000 and time.monotonic() - started < 40:
            bakes += 1
            try:
                layer = _layer_bytes(root, blobs)
            except ImageError:
                refused += 1  # the swap was caught: a clean failure, never a leak
                continue
            leaked += marker in layer
    finally:
        swapper.stop.set()
        swapper.join(10)

    assert leaked == 0, f"{leaked} of {bakes} bakes read a file outside the directory"
    assert bakes >= 200 and swapper.flips >= 200  # a real race, not a quiet tree
    assert 0 < refused < bakes  # some bakes met the link, some got a whole tree


def test_symlinks_are_still_stored_as_links_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the image")
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "out").symlink_to(secret)
    (root / "up").symlink_to(tmp_path)

    entries = {e.name: e for e in walk(root)}

    assert entries["d/out"].kind == "symlink" and entries["d/out"].link == str(secret)
    assert entries["up"].kind == "symlink" and "up/secret" not in entries
    assert b"not for the image" not in _layer_bytes(root, tmp_path)


# -- 9. a deep tree: iterative walk, refused beyond MAX_DEPTH ------------------


@pytest.fixture
def nest(tmp_path):
    """``nest(depth)``: a tree that deep under tmp; removed bottom-up afterwards,
    since a recursive ``rmtree`` (pytest's own cleanup) cannot remove it."""
    made = []

    def make(depth: int) -> Path:
        root = tmp_path / "root"
        root.mkdir()
        _nest(root, depth)
        made.append((root, depth))
        return root

    yield make
    for root, depth in made:
        os.unlink(root / ("d/" * depth + "leaf"))
        for level in range(depth, 0, -1):
            os.rmdir(root / "/".join(["d"] * level))


def _nest(root: Path, depth: int) -> None:
    """``root/d/d/.../d/leaf``: ``depth`` directories, then a file."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"bottom")
        os.close(leaf)
    finally:
        os.close(fd)


def test_tree_at_the_depth_limit_bakes(nest):
    root = nest(MAX_DEPTH - 1)  # the leaf is the MAX_DEPTH-th component

    names = [e.name for e in walk(root)]

    assert names[-1] == "d/" * (MAX_DEPTH - 1) + "leaf"


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1500])
def test_deeper_tree_is_a_clear_error_not_a_recursion_error(tmp_path, nest, depth):
    root = nest(depth)
    open_fds = len(os.listdir("/proc/self/fd"))

    with pytest.raises(ImageError, match=f"deeper than {MAX_DEPTH} levels"):
        bake(root, ImageSpec(), tmp_path / "blobs")

    assert len(os.listdir("/proc/self/fd")) == open_fds  # every directory fd closed again


def test_scratchd_bake_of_a_1500_level_tree_is_one_line_no_traceback(tmp_path, nest):
    root = nest(1500)
    out = subprocess.run(
        [sys.executable, "-m", "scratchd", "bake", str(root), "--oci-layout", str(tmp_path / "l")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "RecursionError" not in out.stderr
    assert f"deeper than {MAX_DEPTH} levels" in out.stderr


# -- 10. optional caps ------------------------------------------------------------


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def test_largest_file_cap_refuses_a_50_gb_sparse_file_before_reading(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    _sparse(root / "huge", 50 << 30)
    started = time.monotonic()

    with pytest.raises(ImageError, match=r"huge: 53687091200 bytes, larger than the 1048576"):
        bake(root, ImageSpec(), tmp_path / "blobs", limits=Limits(max_file_size=1 << 20))

    assert time.monotonic() - started < 10


def test_total_bytes_cap(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in "abc":
        (root / name).write_bytes(b"x" * 1000)
    limits = Limits(max_file_size=1000, max_total_size=2999)

    with pytest.raises(ImageError, match=r"/c: the files reach 3000 bytes, more than the 2999"):
        bake(root, ImageSpec(), tmp_path / "blobs", limits=limits)
    assert bake(root, ImageSpec(), tmp_path / "b2", limits=Limits(max_total_size=3000)).digest


def test_time_cap_stops_reading_a_huge_file(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    _sparse(root / "huge", 50 << 30)
    started = time.monotonic()

    with pytest.raises(ImageError, match=r"longer than its 1s limit \(bake_timeout\)"):
        bake(root, ImageSpec(), tmp_path / "blobs", limits=Limits(timeout=1.0))

    assert time.monotonic() - started < 15
    assert not [p for p in (tmp_path / "blobs").iterdir()]  # no half-written blob left


def test_caps_do_not_change_the_digest(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"same")
    (root / "l").symlink_to("d/f")
    spec = ImageSpec(created=1_700_000_000)
    capped = Limits(max_file_size=10, max_total_size=10, timeout=60)

    assert (
        bake(root, spec, tmp_path / "a").digest
        == bake(root, spec, tmp_path / "b", limits=capped).digest
    )
