"""What bake() puts in the layer, the config and the manifest."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat

import pytest

from scratchd.errors import ImageError, ImageOptionError, UnsupportedFileError
from scratchd.image.build import ANNOTATION_REVISION, bake, container_config
from scratchd.models import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    ImageSpec,
    Platform,
)
from tests.image.kit import config_of, layer_contents, layer_members, make_tree, manifest_of

CREATED = 1700000000


def test_layer_holds_exactly_the_tree_sorted_with_parents(tmp_path):
    root = make_tree(
        tmp_path / "out",
        {"b/z.txt": "z", "b/a/deep.txt": "deep", "a.txt": "a", "c": None, "B": "upper"},
    )
    image = bake(root, ImageSpec(created=CREATED), tmp_path / "blobs")
    names = [m.name for m in layer_members(image)]
    assert names == ["B", "a.txt", "b", "b/a", "b/a/deep.txt", "b/z.txt", "c"]
    assert layer_contents(image) == {
        "B": b"upper",
        "a.txt": b"a",
        "b/a/deep.txt": b"deep",
        "b/z.txt": b"z",
    }


def test_headers_are_normalised(tmp_path):
    root = make_tree(
        tmp_path / "out",
        {"bin/app": "#!/bin/sh\n", "etc/conf": "x", "bin/setuid": "y"},
        modes={"bin/app": 0o755, "etc/conf": 0o600, "bin/setuid": 0o4755},
    )
    os.utime(root / "bin/app", (1, 12345))
    image = bake(root, ImageSpec(created=CREATED), tmp_path / "blobs")
    members = {m.name: m for m in layer_members(image)}
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", CREATED)
        assert set(m.pax_headers) <= {"path", "linkpath", "hdrcharset"}
    assert members["bin/app"].mode == 0o755  # exec bits kept
    assert members["etc/conf"].mode == 0o600
    assert members["bin/setuid"].mode == 0o4755
    assert members["bin"].isdir()


def test_symlinks_are_stored_not_followed(tmp_path):
    secret = tmp_path / "outside-secret"
    secret.write_text("must not leak")
    root = make_tree(
        tmp_path / "out",
        {
            "bin/busybox": "binary",
            "bin/sh": "->busybox",
            "escape": f"->{secret}",
            "up": "->../../../etc/passwd",
            "dangling": "->nowhere",
            "linkdir": f"->{tmp_path}",
        },
    )
    image = bake(root, ImageSpec(), tmp_path / "blobs")
    members = {m.name: m for m in layer_members(image)}
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["escape"].linkname == str(secret)
    assert members["up"].linkname == "../../../etc/passwd"
    assert members["dangling"].linkname == "nowhere"
    assert members["linkdir"].issym()
    assert not any(n.startswith("linkdir/") for n in members)
    assert b"must not leak" not in gzip.decompress(image.layers[0].path.read_bytes())


def test_hard_links_are_kept(tmp_path):
    root = make_tree(tmp_path / "out", {"a/one": "same inode " * 100})
    os.link(root / "a/one", root / "two")
    os.link(root / "a/one", root / "a/three")
    image = bake(root, ImageSpec(), tmp_path / "blobs")
    members = {m.name: m for m in layer_members(image)}
    assert members["a/one"].isreg() and members["a/one"].size == 1100
    assert members["a/three"].islnk() and members["a/three"].linkname == "a/one"
    assert members["two"].islnk() and members["two"].linkname == "a/one"


def test_long_and_non_utf8_names_are_stored_exactly(tmp_path):
    """Decision: non-UTF-8 names are stored, as raw bytes in PAX path records."""
    root = tmp_path / "out"
    long_name = "d" * 120 + "/" + "f" * 150
    make_tree(root, {long_name: "long", "caf\u00e9": "utf8"})
    with open(os.fsencode(root) + b"/latin1-caf\xe9", "wb") as f:
        f.write(b"latin1")
    image = bake(root, ImageSpec(), tmp_path / "blobs")
    contents = layer_contents(image)
    assert contents[long_name] == b"long"
    assert contents["caf\u00e9"] == b"utf8"
    assert contents[os.fsdecode(b"latin1-caf\xe9")] == b"latin1"


def test_gzip_header_has_no_time_and_no_name(tmp_path):
    image = bake(make_tree(tmp_path / "out", {"f": "x"}), ImageSpec(), tmp_path / "blobs")
    header = image.layers[0].path.read_bytes()[:10]
    assert header[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME/FCOMMENT/FEXTRA
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0


def test_digests_match_the_bytes(tmp_path):
    image = bake(make_tree(tmp_path / "out", {"f": "x" * 5000}), ImageSpec(), tmp_path / "blobs")
    layer = image.layers[0]
    data = layer.path.read_bytes()
    assert layer.descriptor.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer.descriptor.size == len(data)
    assert layer.path.name == layer.descriptor.digest.removeprefix("sha256:")
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert config_of(image)["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert (
        image.config.descriptor.digest == "sha256:" + hashlib.sha256(image.config.data).hexdigest()
    )


def test_docker_config_and_manifest(tmp_path):
    spec = ImageSpec(
        cmd=("./app", "--port", "5000"),
        entrypoint=("/bin/busybox",),
        env=(("A", "1"), ("B", "two words")),
        ports=("5000/tcp", "8080/udp"),
        labels=(("team", "core"),),
        volumes=("/data",),
        workdir="/srv",
        user="65534",
        stop_signal="SIGINT",
        created=CREATED,
        revision="abc123",
        source="https://example.invalid/app",
        platform=Platform("linux", "arm", "v7"),
    )
    image = bake(make_tree(tmp_path / "out", {"f": "x"}), spec, tmp_path / "blobs")
    config = config_of(image)
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["history"] == [{"created": "2023-11-14T22:13:20Z", "created_by": "scratchd bake"}]
    assert config["config"] == {
        "Cmd": ["./app", "--port", "5000"],
        "Entrypoint": ["/bin/busybox"],
        "Env": ["A=1", "B=two words"],
        "ExposedPorts": {"5000/tcp": {}, "8080/udp": {}},
        "Labels": {
            "team": "core",
            "org.opencontainers.image.revision": "abc123",
            "org.opencontainers.image.source": "https://example.invalid/app",
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        },
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "User": "65534",
        "StopSignal": "SIGINT",
    }
    manifest = manifest_of(image)
    assert image.media_type == manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["layers"][0]["mediaType"] == DOCKER_LAYER_GZIP
    assert "annotations" not in manifest  # schema 2 has none; labels carry them


def test_manifest_is_canonical_json(tmp_path):
    image = bake(make_tree(tmp_path / "out", {"f": "x"}), ImageSpec(), tmp_path / "blobs")
    for raw in (image.manifest, image.config.data):
        doc = json.loads(raw)
        assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_oci_manifest_has_annotations(tmp_path):
    spec = ImageSpec(oci=True, revision="abc", source="https://x.invalid/r", created=CREATED)
    image = bake(make_tree(tmp_path / "out", {"f": "x"}), spec, tmp_path / "blobs")
    manifest = manifest_of(image)
    assert image.media_type == OCI_MANIFEST
    assert manifest["annotations"] == {
        "org.opencontainers.image.revision": "abc",
        "org.opencontainers.image.source": "https://x.invalid/r",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
    }


def test_zstd_layer(tmp_path):
    root = make_tree(tmp_path / "out", {"f": "zstd " * 1000})
    spec = ImageSpec(oci=True, compression="zstd")
    image = bake(root, spec, tmp_path / "blobs")
    assert image.layers[0].descriptor.media_type == OCI_LAYER_ZSTD
    assert layer_contents(image) == {"f": b"zstd " * 1000}
    assert bake(root, spec, tmp_path / "blobs2").digest == image.digest


def test_zstd_needs_oci(tmp_path):
    with pytest.raises(ImageOptionError, match="zstd layers need --format oci"):
        bake(make_tree(tmp_path / "out", {}), ImageSpec(compression="zstd"), tmp_path / "b")


def test_empty_dir_gives_an_empty_layer(tmp_path):
    image = bake(make_tree(tmp_path / "out", {}), ImageSpec(), tmp_path / "blobs")
    assert gzip.decompress(image.layers[0].path.read_bytes()) == b"\0" * 1024
    assert layer_members(image) == []


def test_missing_and_non_directory_root(tmp_path):
    with pytest.raises(ImageError, match=f"^{tmp_path}/nope: no such directory$"):
        bake(tmp_path / "nope", ImageSpec(), tmp_path / "blobs")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match=f"^{tmp_path}/file: not a directory$"):
        bake(tmp_path / "file", ImageSpec(), tmp_path / "blobs")


def test_fifo_is_refused_and_no_partial_blob_is_left(tmp_path):
    root = make_tree(tmp_path / "out", {"a": "x" * 3_000_000})
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsupportedFileError, match=f"^{root}/pipe: is a FIFO;"):
        bake(root, ImageSpec(), tmp_path / "blobs")
    assert list((tmp_path / "blobs").iterdir()) == []


def test_device_is_refused(tmp_path):
    root = make_tree(tmp_path / "out", {})
    try:
        os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    with pytest.raises(UnsupportedFileError, match=f"^{root}/null: is a character device;"):
        bake(root, ImageSpec(), tmp_path / "blobs")


def test_a_file_changed_after_the_walk_is_not_trusted(tmp_path):
    """Size and type are checked again when the file is opened, symlinks never followed."""
    import io

    from scratchd.image import layer, tree

    class Sink:
        def __init__(self):
            self.buf = io.BytesIO()

        def write(self, data):
            self.buf.write(data)

    (tmp_path / "short").write_bytes(b"0123456789")
    shrunk = tree.Entry("short", tree.FILE, 0o644, size=100, source=str(tmp_path / "short"))
    with pytest.raises(ImageError, match=r"short: file shrank while it was being baked$"):
        layer._copy_file(shrunk, Sink())
    (tmp_path / "link").symlink_to(tmp_path / "short")
    swapped = tree.Entry("link", tree.FILE, 0o644, size=10, source=str(tmp_path / "link"))
    with pytest.raises(UnsupportedFileError, match="link: cannot open"):
        layer._copy_file(swapped, Sink())
    os.mkfifo(tmp_path / "fifo")
    fifo = tree.Entry("fifo", tree.FILE, 0o644, size=10, source=str(tmp_path / "fifo"))
    with pytest.raises(ImageError, match="fifo: replaced by another kind of file"):
        layer._copy_file(fifo, Sink())


def test_disk_full_is_an_infrastructure_error(tmp_path):
    """ENOSPC while writing the blob is retryable, not the build output's fault."""
    from scratchd.errors import InfrastructureError
    from scratchd.image import layer
    from scratchd.image.compress import GzipBlocks

    compressor = GzipBlocks(1)
    with open("/dev/full", "wb", buffering=0) as full:
        try:
            with pytest.raises(InfrastructureError, match="writing the layer failed: No space"):
                sink = layer._CompressingSink(full, compressor)
                sink.write(os.urandom(3 << 20))
                sink.close()
        finally:
            compressor.close()


def test_container_config_holds_only_the_options_set():
    """The docker-push step commits a container with this same mapping."""
    spec = ImageSpec(cmd=("./app",), ports=("5000/tcp",), workdir="/srv", revision="abc")
    assert container_config(spec) == {
        "Cmd": ["./app"],
        "ExposedPorts": {"5000/tcp": {}},
        "WorkingDir": "/srv",
    }
    assert container_config(ImageSpec(cmd=())) == {"Cmd": []}  # [] is set, None is not


def test_an_explicit_label_wins_over_a_derived_one(tmp_path):
    spec = ImageSpec(labels=((ANNOTATION_REVISION, "mine"),), revision="abc")
    derived = [("a", "1"), (ANNOTATION_REVISION, "abc")]
    labels = container_config(spec, derived_labels=derived)["Labels"]
    assert labels == {"a": "1", ANNOTATION_REVISION: "mine"}
    image = bake(make_tree(tmp_path / "t", {"f": b"x"}), spec, tmp_path / "b")
    assert config_of(image)["config"]["Labels"][ANNOTATION_REVISION] == "mine"
