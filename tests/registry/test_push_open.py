"""Groups 1 and 5: an open registry over HTTP, judged by docker, skopeo and a counting proxy."""

from __future__ import annotations

import json
import subprocess

import requests

from scratchd.models import DOCKER_MANIFEST
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import make_client
from tests.support import services


def _skopeo_digest(ref: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)["Digest"]


def test_push_then_docker_pull_and_run(registry, bake_image, docker_client):
    image = bake_image("hello from a scratchd push")
    ref = parse_repository(f"{registry.host}/team/app")
    result = make_client().push(image, ref, ["v1", "latest", "extra"])

    assert result.digest == image.digest
    assert result.tags == ("v1", "latest", "extra")
    assert result.bytes_uploaded == sum(b.descriptor.size for b in image.blobs())
    for tag in result.tags:
        assert _skopeo_digest(f"{registry.host}/team/app:{tag}") == image.digest
    name = f"{registry.host}/team/app:v1"
    try:
        pulled = docker_client.images.pull(name)
        assert image.digest in "".join(pulled.attrs["RepoDigests"])
        out = docker_client.containers.run(name, remove=True)
        assert out == b"hello from a scratchd push"
    finally:
        docker_client.images.remove(name, force=True)


def test_manifest_is_stored_with_its_media_type(registry, bake_image):
    image = bake_image()
    make_client().push(image, parse_repository(f"{registry.host}/team/media"), ["latest"])
    got = requests.get(
        f"{registry.url}/v2/team/media/manifests/latest",
        headers={"Accept": DOCKER_MANIFEST}, timeout=10,
    )  # fmt: skip
    assert got.headers["Content-Type"] == DOCKER_MANIFEST
    assert got.content == image.manifest


def test_repush_uploads_no_blob_bytes(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("repush")
    ref = parse_repository(f"{proxy.host}/team/repush")
    make_client().push(image, ref, ["latest"])
    assert proxy.blob_bytes() == sum(b.descriptor.size for b in image.blobs())

    proxy.reset()
    again = make_client().push(image, ref, ["latest"])  # a new client: nothing cached

    assert again.bytes_uploaded == 0
    assert again.blobs_skipped == 2
    # The figures the daemon records: the blobs' bytes count under "existed", not "uploaded".
    total = sum(b.descriptor.size for b in image.blobs())
    figures = again.figures()
    assert (figures.registry, figures.repository) == (proxy.host, "team/repush")
    assert figures.of("existed") == (2, total)
    assert figures.of("uploaded") == figures.of("mounted") == (0, 0)
    assert figures.seconds > 0
    assert proxy.blob_bytes() == 0
    assert proxy.count("HEAD", "/blobs/") == 2
    assert proxy.count("POST") == proxy.count("PATCH") == 0
    assert proxy.count("PUT") == 1  # the manifest, once for its one tag


def test_second_repository_mounts_the_layer(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("mount me")
    client = make_client()
    client.push(image, parse_repository(f"{proxy.host}/team/first"), ["latest"])
    proxy.reset()

    result = client.push(image, parse_repository(f"{proxy.host}/team/second"), ["latest"])

    assert result.blobs_mounted == 2 and result.bytes_uploaded == 0
    assert proxy.blob_bytes() == 0
    assert proxy.count("POST", r"mount=sha256.*from=team%2Ffirst") == 2
    assert _skopeo_digest(f"{registry.host}/team/second:latest") == image.digest


def test_mount_hint_from_the_daemon_is_used(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("hinted")
    make_client().push(image, parse_repository(f"{proxy.host}/team/src"), ["latest"])
    layer = image.layers[0].descriptor.digest
    proxy.reset()

    result = make_client().push(
        image,
        parse_repository(f"{proxy.host}/team/dst"),
        ["latest"],
        mount_from={layer: "team/src"},
    )

    assert result.blobs_mounted == 1
    assert result.bytes_uploaded == image.config.descriptor.size
    assert result.blobs["mounted"] == (1, image.layers[0].descriptor.size)
    assert result.blobs["uploaded"] == (1, image.config.descriptor.size)
    assert proxy.count("POST", "mount=") == 1


def test_mount_refused_falls_back_to_upload(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("wrong hint")
    layer = image.layers[0].descriptor.digest

    result = make_client().push(
        image, parse_repository(f"{proxy.host}/team/x"), ["latest"], mount_from={layer: "no/such"}
    )

    assert result.blobs_mounted == 0
    assert proxy.blob_bytes() == sum(b.descriptor.size for b in image.blobs())
    assert _skopeo_digest(f"{registry.host}/team/x:latest") == image.digest


def test_large_blob_goes_up_in_patch_chunks(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("chunked", extra=__import__("os").urandom(3 << 20))
    layer = image.layers[0].descriptor
    client = make_client(chunk_threshold=1 << 20, chunk_size=1 << 20)

    client.push(image, parse_repository(f"{proxy.host}/team/chunks"), ["latest"])

    assert proxy.count("PATCH") == -(-layer.size // (1 << 20))
    assert _skopeo_digest(f"{registry.host}/team/chunks:latest") == image.digest


def test_relative_location_headers(tmp_path, bake_image):
    # run_registry appends ``auth`` right after the ``http:`` keys, so an
    # indented line lands under ``http:`` (where relativeurls lives).
    under_http = "  relativeurls: true\n"
    with services.run_registry(tmp_path / "relative", auth=under_http) as registry:
        image = bake_image("relative")
        make_client().push(image, parse_repository(f"{registry.host}/team/rel"), ["latest"])
        probe = requests.post(f"{registry.url}/v2/team/rel/blobs/uploads/", timeout=10)
        assert probe.headers["Location"].startswith("/v2/")  # the registry really is relative
        assert _skopeo_digest(f"{registry.host}/team/rel:latest") == image.digest
