"""``docker load`` accepts our archives and ``docker run`` runs the static binary in them."""

from __future__ import annotations

import json
import shutil
import tarfile
import uuid

import pytest

from scratchd.errors import ImageOptionError
from scratchd.image.build import bake
from scratchd.image.docker_archive import write_docker_archive
from scratchd.models import ImageSpec
from tests.image.kit import make_tree


@pytest.fixture
def repo_name(docker_client):
    """A unique repository name; every image loaded under it is removed afterwards."""
    name = f"scratchd-test-bake/{uuid.uuid4().hex[:12]}"
    yield name
    for image in docker_client.images.list(name=name):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


def _bake_busybox(tmp_path, busybox, spec):
    root = make_tree(tmp_path / "out", {"etc/motd": "from a file\n"})
    (root / "bin").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    return bake(root, spec, tmp_path / "blobs")


def test_docker_load_run_and_inspect(tmp_path, docker_client, static_busybox, repo_name):
    spec = ImageSpec(
        cmd=("/bin/busybox", "sh", "-c", 'echo "$GREETING"; pwd; id -u; cat /etc/motd'),
        env=(("GREETING", "hello from scratch"),),
        ports=("5000/tcp", "8080/udp"),
        labels=(("team", "core"),),
        workdir="/etc",
        user="65534",
        created=1700000000,
        revision="0123abc",
    )
    image = _bake_busybox(tmp_path, static_busybox, spec)
    archive = tmp_path / "image.tar"
    write_docker_archive(image, archive, [f"{repo_name}:v1", f"{repo_name}:latest"])
    with archive.open("rb") as f:
        loaded = docker_client.images.load(f.read())
    assert sorted(loaded[0].tags) == [f"{repo_name}:latest", f"{repo_name}:v1"]
    output = docker_client.containers.run(f"{repo_name}:v1", remove=True, network_disabled=True)
    assert output.decode() == "hello from scratch\n/etc\n65534\nfrom a file\n"
    attrs = docker_client.images.get(f"{repo_name}:v1").attrs
    config = attrs["Config"]
    assert set(config["ExposedPorts"]) == {"5000/tcp", "8080/udp"}
    assert config["Env"] == ["GREETING=hello from scratch"]
    assert config["Labels"]["team"] == "core"
    assert config["Labels"]["org.opencontainers.image.revision"] == "0123abc"
    assert config["WorkingDir"] == "/etc"
    assert config["User"] == "65534"
    assert attrs["RootFS"]["Layers"] == json.loads(image.config.data)["rootfs"]["diff_ids"]
    assert attrs["Id"] == image.config.descriptor.digest  # docker's image ID is the config digest


def test_image_holds_only_the_directory(tmp_path, docker_client, static_busybox, repo_name):
    image = _bake_busybox(
        tmp_path, static_busybox, ImageSpec(cmd=("/bin/busybox", "ls", "-A", "/"))
    )
    write_docker_archive(image, tmp_path / "a.tar", [f"{repo_name}:ls"])
    docker_client.images.load((tmp_path / "a.tar").read_bytes())
    out = docker_client.containers.run(f"{repo_name}:ls", remove=True, network_disabled=True)
    # docker itself adds /dev, /proc, /sys and /etc/{hosts,hostname,resolv.conf} mounts
    assert set(out.decode().split()) - {"dev", "proc", "sys", ".dockerenv"} == {"bin", "etc"}


def test_empty_dir_loads(tmp_path, docker_client, repo_name):
    image = bake(make_tree(tmp_path / "out", {}), ImageSpec(), tmp_path / "blobs")
    write_docker_archive(image, tmp_path / "empty.tar", [f"{repo_name}:empty"])
    docker_client.images.load((tmp_path / "empty.tar").read_bytes())
    assert docker_client.images.get(f"{repo_name}:empty").attrs["Size"] == 0


def test_archive_layout(tmp_path):
    image = bake(make_tree(tmp_path / "out", {"f": "x"}), ImageSpec(), tmp_path / "blobs")
    write_docker_archive(image, tmp_path / "a.tar", ["app:v1"])
    with tarfile.open(tmp_path / "a.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        layer = manifest[0]["Layers"][0]
        assert tar.extractfile(layer).read() == image.layers[0].path.read_bytes()
    assert manifest[0]["RepoTags"] == ["app:v1"]
    assert manifest[0]["Config"] == "blobs/sha256/" + image.config.descriptor.digest[7:]


def test_archive_refuses_a_bad_reference(tmp_path):
    image = bake(make_tree(tmp_path / "out", {}), ImageSpec(), tmp_path / "blobs")
    with pytest.raises(ImageOptionError, match="'Bad:Tag' is not a docker reference"):
        write_docker_archive(image, tmp_path / "a.tar", ["Bad:Tag"])
    assert not (tmp_path / "a.tar").exists()
