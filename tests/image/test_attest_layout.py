"""Attestations in an OCI layout and a docker archive, judged by umoci, skopeo and docker load."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid

from scratchd.image.attest import attest_image
from scratchd.image.build import bake
from scratchd.image.docker_archive import write_docker_archive
from scratchd.image.oci_layout import read_oci_layout, write_oci_layout
from scratchd.image.provenance import ProvenanceInputs
from scratchd.models import ImageSpec
from tests.image.kit import make_tree, tool
from tests.registry.readers import LayoutSource, buildx_walk, oras_find

INPUTS = ProvenanceInputs(repository="cities", commit="12" * 20)


def _attested(tmp_path, busybox, *, oci=True):
    root = make_tree(tmp_path / "out", {"etc/motd": "attested\n"})
    (root / "bin").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    spec = ImageSpec(cmd=("/bin/busybox", "cat", "/etc/motd"), oci=oci, created=1_700_000_000)
    image = bake(root, spec, tmp_path / "blobs")
    return image, attest_image(image, INPUTS)


def test_layout_carries_attestations_and_umoci_still_unpacks(tmp_path, static_busybox):
    image, attested = _attested(tmp_path, static_busybox)
    layout = tmp_path / "layout"
    write_oci_layout(attested, layout, ["v1"])

    bundle = tmp_path / "bundle"
    subprocess.run(
        [tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (bundle / "rootfs" / "etc" / "motd").read_text() == "attested\n"
    inspected = subprocess.run(
        [tool("skopeo"), "inspect", f"oci:{layout}:v1"], capture_output=True, check=True
    )
    assert json.loads(inspected.stdout)["Digest"] == image.digest
    source = LayoutSource(layout)
    platform, found = buildx_walk(source, json.loads((layout / "index.json").read_text()))
    assert platform == image.digest and set(found) == {"sbom", "provenance"}
    assert set(oras_find(source, image.digest)) == {"sbom", "provenance"}
    again = read_oci_layout(layout, "v1")
    assert again.digest == attested.digest  # the index is rebuilt byte for byte
    assert (layout / "blobs" / "sha256" / attested.digest.removeprefix("sha256:")).exists()


def test_retagging_drops_an_unreferenced_attestation(tmp_path, static_busybox):
    image, attested = _attested(tmp_path, static_busybox)
    layout = tmp_path / "layout"
    write_oci_layout(attested, layout, ["v1"])
    write_oci_layout(
        bake(make_tree(tmp_path / "o2", {"x": "y"}), ImageSpec(oci=True), tmp_path / "b2"),
        layout,
        ["v1"],
    )

    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1
    assert read_oci_layout(layout, "v1").digest != image.digest


def test_docker_archive_carries_attestations_and_still_loads(
    tmp_path, static_busybox, docker_client
):
    image, attested = _attested(tmp_path, static_busybox, oci=False)
    name = f"scratchd-test-attest/{uuid.uuid4().hex[:12]}:v1"
    archive = tmp_path / "image.tar"
    write_docker_archive(attested, archive, [name])

    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data")
    assert set(oras_find(LayoutSource(extracted), image.digest)) == {"sbom", "provenance"}
    try:
        with open(archive, "rb") as f:
            docker_client.images.load(f.read())
        assert docker_client.containers.run(name, remove=True) == b"attested\n"
    finally:
        docker_client.images.remove(name, force=True)
