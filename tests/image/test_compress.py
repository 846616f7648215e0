"""Block-parallel gzip is one valid gzip member, identical for any thread count."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import pytest

from scratchd.image.build import bake
from scratchd.image.compress import GzipBlocks
from scratchd.image.layer import CHUNK
from scratchd.models import ImageSpec
from tests.image.kit import layer_contents, make_tree

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345]


def _compress(data: bytes, level: int = 1, workers: int | None = None) -> bytes:
    blocks = GzipBlocks(level, workers)
    try:
        full = len(data) - len(data) % CHUNK
        futures = [blocks.submit(data[i : i + CHUNK]) for i in range(0, full, CHUNK)]
        body = b"".join(f.result() for f in futures)
        return blocks.header() + body + blocks.finish(data[full:])
    finally:
        blocks.close()


def _sample(size: int) -> bytes:
    """Half random, half repetitive text: both kinds of deflate blocks."""
    text = b"GET /index.html 200 12ms user=42\n" * (size // 66 + 1)
    return (os.urandom(size // 2) + text)[:size]


@pytest.mark.parametrize("size", SIZES)
def test_round_trips_and_gzip_accepts_it(size, tmp_path):
    data = _sample(size)
    packed = _compress(data)
    assert gzip.decompress(packed) == data
    (tmp_path / "x.gz").write_bytes(packed)
    gzip_tool = shutil.which("gzip")
    assert gzip_tool, "gzip is part of every Debian system"
    subprocess.run([gzip_tool, "-t", str(tmp_path / "x.gz")], check=True)  # checks CRC and size


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_same_bytes_whatever_the_thread_count(level):
    data = _sample(3 * CHUNK + 777)
    one = _compress(data, level, workers=1)
    assert _compress(data, level, workers=4) == one
    assert gzip.decompress(one) == data


def test_header_is_fixed():
    assert GzipBlocks(1).header() == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03"
    assert GzipBlocks(6).header()[8] == 0


def test_files_straddling_block_boundaries_round_trip(tmp_path):
    files = {f"f{n}": _sample(n) for n in SIZES}
    root = make_tree(tmp_path / "out", files)
    image = bake(root, ImageSpec(), tmp_path / "blobs")
    assert layer_contents(image) == files
    assert bake(root, ImageSpec(), tmp_path / "blobs2").digest == image.digest


@pytest.mark.parametrize("size", [CHUNK // 5, CHUNK + CHUNK // 5, 3 * CHUNK + 12345])
def test_the_layer_is_the_blocks_in_order_whatever_finishes_first(size, tmp_path):
    """The sink compresses the tail before it collects the workers' blocks;
    the blob must still be the reference: blocks in stream order, tail last."""
    root = make_tree(tmp_path / "out", {"app": _sample(size)})
    image = bake(root, ImageSpec(), tmp_path / "blobs")
    path = image.layers[0].path
    assert path is not None
    blob = path.read_bytes()
    assert _compress(gzip.decompress(blob), workers=1) == blob
    subprocess.run(["tar", "-xzf", str(path), "-C", str(tmp_path)], check=True)
    assert (tmp_path / "app").read_bytes() == root.joinpath("app").read_bytes()
