"""Group 4: a loopback proxy injects failures between the client and a real registry."""

from __future__ import annotations

import time

import pytest
import requests

from scratchd.errors import RegistryError
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import fast_retry, make_client
from tests.registry.servers import Fault


def _tag_exists(registry, repository: str, tag: str) -> bool:
    got = requests.head(f"{registry.url}/v2/{repository}/manifests/{tag}", timeout=10)
    return got.status_code == 200


def test_push_survives_5xx_429_resets_and_slow_responses(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(
        Fault("GET", "^/v2/$", status=503),
        Fault("HEAD", "/blobs/", status=500, times=2),
        Fault("POST", "/blobs/uploads/", status=429, headers={"Retry-After": "1"}),
        Fault("PUT", r"/blobs/uploads/.*digest=", action="reset"),
        Fault("PUT", "/manifests/", status=502),
        Fault("PUT", "/manifests/", action="delay", delay=1.0),
    )
    image = bake_image("flaky network")
    started = time.monotonic()

    result = make_client().push(image, parse_repository(f"{proxy.host}/team/flaky"), ["latest"])

    assert result.digest == image.digest
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    fired = {(f.method, f.action, f.status): f.hits for f in proxy.faults}
    assert fired[("GET", "status", 503)] == 1
    assert fired[("HEAD", "status", 500)] == 2
    assert fired[("POST", "status", 429)] == 1
    assert fired[("PUT", "reset", 500)] == 1
    assert fired[("PUT", "delay", 500)] == 1
    assert _tag_exists(registry, "team/flaky", "latest")
    resets = [s for s in proxy.seen if s.status == 0]
    assert resets and all(s.method == "PUT" for s in resets)


def test_reset_mid_upload_restarts_from_a_fresh_session(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(Fault("PUT", r"/blobs/uploads/.*digest=", action="reset", times=2))
    image = bake_image("restart")

    make_client(parallel=1).push(image, parse_repository(f"{proxy.host}/team/re"), ["latest"])

    posts = proxy.count("POST", "/blobs/uploads/")
    assert posts == 2 + 2  # one per blob, plus one per reset upload
    assert _tag_exists(registry, "team/re", "latest")


def test_chunked_upload_survives_a_reset_patch(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(Fault("PATCH", "", action="reset"))
    image = bake_image("chunk reset", extra=bytes(range(256)) * 8192)
    client = make_client(chunk_threshold=1 << 20, chunk_size=1 << 20)

    client.push(image, parse_repository(f"{proxy.host}/team/chunkre"), ["latest"])

    assert _tag_exists(registry, "team/chunkre", "latest")


def test_permanent_failure_is_clear_and_leaves_no_tag(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    layer_put = Fault("PUT", r"/blobs/uploads/.*digest=", status=503, times=1000)
    proxy.add(layer_put)
    image = bake_image("never lands")
    client = make_client(retry=fast_retry(attempts=3))

    with pytest.raises(RegistryError) as caught:
        client.push(image, parse_repository(f"{proxy.host}/team/broken"), ["latest"])

    error = caught.value
    assert error.status == 503 and error.code == "UNAVAILABLE"
    assert "gave up" in str(error) and "after 3 attempts" in str(error)
    assert "_state" not in str(error)  # the upload's opaque token stays out of messages
    assert proxy.count("PUT", "/manifests/") == 0
    assert not _tag_exists(registry, "team/broken", "latest")


def test_retry_after_longer_than_the_budget_gives_up_at_once(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(Fault("POST", "/blobs/uploads/", status=429, headers={"Retry-After": "3600"}))
    client = make_client(parallel=1)
    started = time.monotonic()

    with pytest.raises(RegistryError, match="HTTP 429"):
        client.push(bake_image("x"), parse_repository(f"{proxy.host}/team/slow"), ["latest"])

    assert time.monotonic() - started < 10


def test_4xx_other_than_408_429_is_not_retried(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(Fault("PUT", "/manifests/", status=400, times=10))

    with pytest.raises(RegistryError, match="HTTP 400") as caught:
        make_client().push(bake_image("x"), parse_repository(f"{proxy.host}/team/bad"), ["v"])

    assert caught.value.status == 400
    assert proxy.faults[0].hits == 1


def test_manifest_digest_mismatch_is_an_error(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    wrong = "sha256:" + "0" * 64
    proxy.add(
        Fault("PUT", "/manifests/", action="rewrite", headers={"Docker-Content-Digest": wrong})
    )

    with pytest.raises(RegistryError, match=f"stored as {wrong}, expected sha256:"):
        make_client().push(bake_image("x"), parse_repository(f"{proxy.host}/team/lie"), ["v"])


def test_413_for_a_monolithic_put_switches_to_chunks(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    proxy.add(Fault("PUT", r"/blobs/uploads/.*digest=", status=413, times=2))
    image = bake_image("too large at once")

    make_client(parallel=1).push(image, parse_repository(f"{proxy.host}/team/big"), ["latest"])

    assert proxy.count("PATCH") == 2  # each refused blob went up as one PATCH chunk
    assert _tag_exists(registry, "team/big", "latest")


def test_redirected_head_is_followed(registry, bake_image, proxy_for):
    proxy = proxy_for(registry)
    image = bake_image("redirect")
    layer = image.layers[0].descriptor.digest
    path = f"/v2/team/redir/blobs/{layer}"
    proxy.add(Fault("HEAD", f"^{path}$", status=307, headers={"Location": path}))

    result = make_client().push(image, parse_repository(f"{proxy.host}/team/redir"), ["v"])

    assert result.digest == image.digest
    assert [s.status for s in proxy.seen if s.path == path] == [307, 404]
