"""Same contents and options ⇒ same manifest digest, however the tree was made."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchd.image.build import bake
from scratchd.models import ImageSpec
from tests.image.kit import layer_contents, layer_members

FILES = {
    "app": (b"\x7fELF" + bytes(range(256)) * 40, 0o755),
    "static/index.html": (b"<h1>hi</h1>\n", 0o644),
    "static/css/site.css": (b"body{}\n", 0o644),
    "data/empty": (b"", 0o600),
    "z/y/x/w": (b"deep", 0o640),
}
LINKS = {"bin/app": "../app", "static/latest": "index.html"}
SPEC = ImageSpec(cmd=("/app",), ports=("5000/tcp",), created=1700000000, revision="abc")


def _create(root: Path, order: list[str], *, mtime: int, owner: int | None) -> Path:
    """Write the same tree in a given order, with given mtimes and owner."""
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in LINKS:
            path.symlink_to(LINKS[name])
        else:
            data, mode = FILES[name]
            path.write_bytes(data)
            path.chmod(mode)
    (root / "emptydir").mkdir(exist_ok=True)
    for path in [*root.rglob("*"), root]:
        if owner is not None:
            os.chown(path, owner, owner + 1, follow_symlinks=False)
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def test_same_digest_whatever_mtimes_creation_order_or_owners(tmp_path):
    names = [*FILES, *LINKS]
    first = _create(tmp_path / "one", names, mtime=1, owner=None)
    reordered = list(reversed(names))
    random.Random(7).shuffle(reordered)
    owner = 4321 if os.geteuid() == 0 else None
    second = _create(tmp_path / "two", reordered, mtime=2_000_000_000, owner=owner)
    a = bake(first, SPEC, tmp_path / "blobs-a")
    b = bake(second, SPEC, tmp_path / "blobs-b")
    assert a.manifest == b.manifest
    assert a.layers[0].path.read_bytes() == b.layers[0].path.read_bytes()
    # and the options are part of the identity
    c = bake(first, ImageSpec(cmd=("/app",), created=1700000001), tmp_path / "blobs-c")
    assert c.digest != a.digest


def test_owner_change_alone_keeps_the_digest(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    root = _create(tmp_path / "t", [*FILES, *LINKS], mtime=5, owner=None)
    before = bake(root, SPEC, tmp_path / "b1").digest
    for path in [*root.rglob("*"), root]:
        os.chown(path, 1000, 1000, follow_symlinks=False)
    assert bake(root, SPEC, tmp_path / "b2").digest == before


_segment = st.text(alphabet="abcXYZ019._-é", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
_trees = st.dictionaries(
    st.lists(_segment, min_size=1, max_size=3).map("/".join),
    st.tuples(st.binary(max_size=300), st.sampled_from([0o644, 0o755, 0o600, 0o700])),
    max_size=12,
)


def _materialise(root: Path, tree: dict, order_seed: int, mtime: int) -> dict:
    """Write ``tree``; a name that is also a parent of another becomes a directory."""
    parents = {"/".join(n.split("/")[:i]) for n in tree for i in range(1, n.count("/") + 1)}
    files = {n: v for n, v in tree.items() if n not in parents}
    order = sorted(files)
    random.Random(order_seed).shuffle(order)
    for name in order:
        data, mode = files[name]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return files


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, seeds=st.tuples(st.integers(0, 99), st.integers(0, 99)))
def test_property_random_trees_bake_identically_and_round_trip(tree, seeds):
    work = Path(tempfile.mkdtemp(prefix="scratchd-prop-"))
    try:
        one, two = work / "one", work / "two"
        one.mkdir()
        two.mkdir()
        files = _materialise(one, tree, seeds[0], mtime=10)
        _materialise(two, tree, seeds[1], mtime=99999)
        a = bake(one, SPEC, work / "b1")
        b = bake(two, SPEC, work / "b2")
        assert a.digest == b.digest
        assert layer_contents(a) == {n: d for n, (d, _) in files.items()}
        members = layer_members(a)
        names = [m.name for m in members]
        assert len(names) == len(set(names))
        for m in members:
            parent = m.name.rpartition("/")[0]
            assert not parent or parent in names[: names.index(m.name)]  # parents first
            if m.isreg():
                assert m.mode == files[m.name][1]
    finally:
        shutil.rmtree(work)
