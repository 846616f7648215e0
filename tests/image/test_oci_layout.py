"""OCI layouts: judged by umoci and skopeo, and read back for ``scratchd push``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from scratchd.errors import ImageError
from scratchd.image.build import bake
from scratchd.image.oci_layout import REF_NAME, read_oci_layout, write_oci_layout
from scratchd.models import DOCKER_MANIFEST, ImageSpec
from tests.image.kit import make_tree, tool

TREE = {
    "bin/app": "#!/bin/sh\necho hi\n",
    "bin/sh": "->app",
    "etc/app.conf": "port=5000\n",
    "out": "->../../etc/passwd",
    "var/empty": None,
}
MODES = {"bin/app": 0o755, "etc/app.conf": 0o640}
SPEC = ImageSpec(
    oci=True,
    cmd=("/bin/app", "--port", "5000"),
    env=(("GREETING", "hello"),),
    ports=("5000/tcp",),
    labels=(("team", "core"),),
    workdir="/bin",
    user="65534",
    created=1700000000,
    revision="0123abc",
)


@pytest.fixture
def layout(tmp_path) -> tuple[Path, Path, object]:
    root = make_tree(tmp_path / "out", TREE, MODES)
    os.link(root / "etc/app.conf", root / "etc/hardlink.conf")
    path = tmp_path / "layout"
    image = bake(root, SPEC, path / "blobs" / "sha256")
    write_oci_layout(image, path, ["v1", "latest"])
    return root, path, image


def test_umoci_unpack_yields_exactly_the_tree(layout, tmp_path):
    root, path, _ = layout
    bundle = tmp_path / "bundle"
    # umoci verifies every blob digest and the layer's diff_id while unpacking
    subprocess.run(
        [tool("umoci"), "unpack", "--rootless", "--image", f"{path}:v1", str(bundle)],
        check=True,
        capture_output=True,
    )
    rootfs = bundle / "rootfs"
    found = sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*"))
    assert found == sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert (rootfs / "bin/app").stat().st_mode & 0o7777 == 0o755
    assert (rootfs / "etc/app.conf").stat().st_mode & 0o7777 == 0o640
    assert os.readlink(rootfs / "bin/sh") == "app"
    assert os.readlink(rootfs / "out") == "../../etc/passwd"
    assert (rootfs / "etc/app.conf").read_text() == "port=5000\n"
    assert (rootfs / "bin/app").stat().st_mtime == 1700000000
    assert (rootfs / "etc/hardlink.conf").stat().st_ino == (rootfs / "etc/app.conf").stat().st_ino
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/app", "--port", "5000"]
    assert "GREETING=hello" in config["process"]["env"]
    assert config["process"]["cwd"] == "/bin"


def test_umoci_unpacks_non_utf8_names(tmp_path):
    root = make_tree(tmp_path / "out", {})
    with open(os.fsencode(root) + b"/caf\xe9", "wb") as f:
        f.write(b"latin1")
    path = tmp_path / "layout"
    write_oci_layout(bake(root, SPEC, tmp_path / "blobs"), path, ["v1"])
    bundle = tmp_path / "bundle"
    subprocess.run(
        [tool("umoci"), "unpack", "--rootless", "--image", f"{path}:v1", str(bundle)],
        check=True,
        capture_output=True,
    )
    assert os.listdir(os.fsencode(bundle / "rootfs")) == [b"caf\xe9"]


def test_skopeo_inspect_shows_the_config(layout):
    _, path, image = layout
    out = subprocess.run(
        [tool("skopeo"), "inspect", f"oci:{path}:latest"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    assert info["Digest"] == image.digest
    assert info["Created"] == "2023-11-14T22:13:20Z"
    assert info["Labels"]["team"] == "core"
    assert info["Labels"]["org.opencontainers.image.revision"] == "0123abc"
    assert info["Env"] == ["GREETING=hello"]
    assert info["Layers"] == [image.layers[0].descriptor.digest]
    raw = subprocess.run(
        [tool("skopeo"), "inspect", "--config", "--raw", f"oci:{path}:v1"],
        check=True,
        capture_output=True,
    ).stdout
    assert raw == image.config.data


def test_docker_format_layout_round_trips(tmp_path):
    """Allowed for ``scratchd push``; skopeo/umoci only list OCI manifests in a layout."""
    root = make_tree(tmp_path / "out", {"f": "x"})
    image = bake(root, ImageSpec(cmd=("/f",)), tmp_path / "blobs")
    write_oci_layout(image, tmp_path / "layout", ["d"])
    again = read_oci_layout(tmp_path / "layout", "d")
    assert again.manifest == image.manifest
    assert again.media_type == DOCKER_MANIFEST


def test_tags_are_replaced_and_layouts_grow(layout, tmp_path):
    _, path, first = layout
    root2 = make_tree(tmp_path / "out2", {"other": "file"})
    second = bake(root2, SPEC, tmp_path / "blobs2")
    write_oci_layout(second, path, ["latest", "v2"])
    index = json.loads((path / "index.json").read_text())
    by_tag = {m["annotations"][REF_NAME]: m["digest"] for m in index["manifests"]}
    assert by_tag == {"v1": first.digest, "latest": second.digest, "v2": second.digest}
    assert len(index["manifests"]) == 3
    assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_read_back_is_the_same_image(layout):
    _, path, image = layout
    again = read_oci_layout(path, "v1")
    assert again.manifest == image.manifest
    assert again.digest == image.digest
    assert again.media_type == image.media_type
    assert again.config.data == image.config.data
    assert [b.descriptor for b in again.layers] == [b.descriptor for b in image.layers]
    with again.layers[0].open() as f:
        assert f.read() == image.layers[0].path.read_bytes()


def test_read_errors_name_the_layout(layout, tmp_path):
    _, path, image = layout
    with pytest.raises(ImageError, match="no image tagged 'nope'"):
        read_oci_layout(path, "nope")
    assert read_oci_layout(path).digest == image.digest  # v1 and latest: one image
    other = bake(make_tree(tmp_path / "o3", {"x": "y"}), SPEC, tmp_path / "b3")
    write_oci_layout(other, path, ["v3"])
    with pytest.raises(ImageError, match="holds 2 images; name a tag"):
        read_oci_layout(path)
    with pytest.raises(ImageError, match=r"index\.json: not found"):
        read_oci_layout(tmp_path / "not-a-layout", "v1")
    image.layers[0].path.unlink()
    with pytest.raises(ImageError, match=r"layer blob sha256:\w+ is missing"):
        read_oci_layout(path, "v1")


def test_single_untagged_image_reads_without_a_tag(tmp_path):
    root = make_tree(tmp_path / "out", {"f": "x"})
    image = bake(root, SPEC, tmp_path / "blobs")
    write_oci_layout(image, tmp_path / "layout", [])
    assert read_oci_layout(tmp_path / "layout").digest == image.digest
