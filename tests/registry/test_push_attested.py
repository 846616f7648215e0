"""Pushing an image with its SBOM and provenance: an index, an attestation manifest, referrers.

Judged by skopeo, docker pull/run, the reference registry's tag list, a
registry with the referrers API written from the spec, and two readers
written from the buildx and ORAS algorithms (tests/registry/readers.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from scratchd.errors import RegistryError
from scratchd.image.attest import attest_image
from scratchd.image.provenance import ProvenanceInputs
from scratchd.models import OCI_INDEX
from scratchd.registry.credentials import CredentialStore
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import fast_retry, make_client
from tests.registry.readers import RegistrySource, buildx_find, oras_find
from tests.registry.referrers_server import ReferrersRegistry
from tests.registry.servers import Fault

INPUTS = ProvenanceInputs(
    repository="cities", ref="refs/heads/main", pipeline="deploy", commit="c0ffee" * 6 + "abcd",
    builder_id="https://ci.example/scratchd", build_id="42",
)  # fmt: skip


@pytest.fixture
def referrers_registry():
    with ReferrersRegistry().running() as registry:
        yield registry


def _attested(bake_image, message="attested"):
    image = bake_image(message)
    return image, attest_image(image, INPUTS, name="team/app")


def _assert_found(found: dict, image) -> None:
    assert set(found) == {"sbom", "provenance"}
    for statement in found.values():
        assert statement["subject"][0]["digest"]["sha256"] == image.digest.removeprefix("sha256:")
    names = {f["fileName"] for f in found["sbom"]["predicate"]["files"]}
    assert names == {"./bin/busybox", "./message"}
    deps = found["provenance"]["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["digest"] == {"gitCommit": INPUTS.commit}


def test_reference_registry_gets_fallback_tag_and_docker_still_pulls(
    registry, bake_image, docker_client
):
    image, attested = _attested(bake_image, "hello from an attested push")
    result = make_client().push(attested, parse_repository(f"{registry.host}/team/app"), ["v1"])

    fallback = "sha256-" + image.digest.removeprefix("sha256:")
    assert result.digest == attested.digest
    assert result.platform_digest == image.digest
    assert result.referrers == f"tag {fallback}"
    tags = requests.get(f"{registry.url}/v2/team/app/tags/list", timeout=10).json()["tags"]
    assert sorted(tags) == sorted(["v1", fallback])
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/app:v1"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert raw == attested.index
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    source = RegistrySource(registry.host, "team/app")
    platform, found = buildx_find(source, "v1")
    assert platform == image.digest
    _assert_found(found, image)
    _assert_found(oras_find(source, image.digest), image)
    assert source.manifest(image.digest) == json.loads(image.manifest)  # digest unchanged
    name = f"{registry.host}/team/app:v1"
    try:
        pulled = docker_client.images.pull(name)
        assert attested.digest in "".join(pulled.attrs["RepoDigests"])
        assert docker_client.containers.run(name, remove=True) == b"hello from an attested push"
    finally:
        docker_client.images.remove(name, force=True)


def test_fallback_tag_lists_each_attestation_once(registry, bake_image):
    image, attested = _attested(bake_image, "twice")
    ref = parse_repository(f"{registry.host}/team/twice")
    make_client().push(attested, ref, ["a"])
    make_client().push(attested, ref, ["b"])
    index = RegistrySource(registry.host, "team/twice").manifest(image.digest.replace(":", "-"))
    assert [m["digest"] for m in index["manifests"]] == [attested.attestation.digest]
    assert index["manifests"][0]["artifactType"] == (
        "application/vnd.docker.attestation.manifest.v1+json"
    )


def test_registry_with_referrers_api_gets_no_fallback_tag(referrers_registry, bake_image):
    image, attested = _attested(bake_image, "api")
    ref = parse_repository(f"{referrers_registry.host}/team/app")
    result = make_client().push(attested, ref, ["v1"])

    assert result.referrers == "referrers API"
    assert referrers_registry.tags_of("team/app") == ["v1"]
    assert not [p for m, p in referrers_registry.requests if m == "PUT" and "sha256-" in p]
    source = RegistrySource(referrers_registry.host, "team/app")
    _assert_found(oras_find(source, image.digest), image)
    _assert_found(buildx_find(source, "v1")[1], image)


def test_plain_image_is_pushed_as_before(referrers_registry, bake_image):
    image = bake_image("plain")
    plain = attest_image(image, INPUTS, sbom="none", provenance="none")
    result = make_client().push(plain, parse_repository(f"{referrers_registry.host}/t/p"), ["v1"])
    assert plain is image
    assert result.digest == image.digest
    assert result.referrers == ""


def test_a_client_that_saw_the_referrers_api_reads_no_fallback_tag(referrers_registry, bake_image):
    """The first push reads the fallback tag beside the attestation (the answer is not in
    yet); once the registry answered ``OCI-Subject`` the client's later pushes skip it."""
    client = make_client()
    first, second = _attested(bake_image, "one")[1], _attested(bake_image, "two")[1]
    client.push(first, parse_repository(f"{referrers_registry.host}/team/a"), ["v1"])
    before = len(referrers_registry.requests)
    shared = client.with_credentials(CredentialStore(environ={}))  # as the daemon does per push
    result = shared.push(second, parse_repository(f"{referrers_registry.host}/team/b"), ["v1"])

    assert result.referrers == "referrers API"
    later = referrers_registry.requests[before:]
    assert not [p for m, p in later if "/manifests/sha256-" in p]
    assert [p for m, p in later if m == "PUT" and "/manifests/" in p][-1].endswith("/v1")


def test_reference_registry_index_put_comes_after_both_manifests(registry, bake_image):
    """Distribution refuses an index naming a manifest it does not hold: the order holds
    although the attestation's side runs beside the layers."""
    attested = _attested(bake_image, "order")[1]
    for n in range(3):  # a race would show up as MANIFEST_UNKNOWN in one of them
        make_client().push(attested, parse_repository(f"{registry.host}/team/o{n}"), ["v1"])
        source = RegistrySource(registry.host, f"team/o{n}")
        assert source.manifest("v1") == json.loads(attested.index)


def test_repush_reads_the_fallback_tag_and_leaves_it_alone(registry, bake_image, proxy_for):
    """Reproducible re-push: the tag already lists this attestation, so no PUT rewrites it."""
    proxy = proxy_for(registry)
    image, attested = _attested(bake_image, "again")
    ref = parse_repository(f"{proxy.host}/team/again")
    fallback = "/manifests/sha256-" + image.digest.removeprefix("sha256:")
    make_client().push(attested, ref, ["v1"])
    assert (proxy.count("GET", fallback), proxy.count("PUT", fallback)) == (1, 1)

    result = make_client().push(attested, ref, ["v1"])
    assert result.referrers == f"tag {fallback.removeprefix('/manifests/')}"
    assert (proxy.count("GET", fallback), proxy.count("PUT", fallback)) == (2, 1)


def test_a_failed_layer_upload_leaves_no_tag_on_a_partial_index(registry, bake_image, proxy_for):
    """The attestation's side runs beside the layers, but the tag (the index) is put only
    once the platform manifest is in, and that only once its layers are."""
    proxy = proxy_for(registry)
    image, attested = _attested(bake_image, "layer breaks")
    layer = image.layers[0].descriptor.digest.removeprefix("sha256:")
    put = rf"/blobs/uploads/.*digest=sha256(:|%3A){layer}"
    proxy.add(Fault("PUT", put, status=503, times=1000))
    ref = parse_repository(f"{proxy.host}/team/partial")

    with pytest.raises(RegistryError):
        make_client(retry=fast_retry(attempts=2)).push(attested, ref, ["v1"])

    assert proxy.count("PUT", "/manifests/v1") == 0
    assert proxy.count("PUT", f"/manifests/{image.digest}") == 0
    source = RegistrySource(registry.host, "team/partial")
    listed = requests.get(f"{registry.url}/v2/team/partial/tags/list", timeout=10).json()
    for tag in listed.get("tags") or []:  # at most the fallback tag: it names what is there
        for child in source.manifest(tag)["manifests"]:
            assert source.manifest(child["digest"])["subject"]["digest"] == image.digest


def test_attestation_blobs_come_from_where_this_client_put_them(registry, bake_image, proxy_for):
    """The empty config is the same in every attestation: a long-lived client mounts it
    from the repository it put it in (one request instead of two), and where it
    already is a HEAD finds it."""
    proxy = proxy_for(registry)
    client = make_client()
    empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    put_empty = rf"/blobs/uploads/.*digest=sha256(:|%3A){empty.removeprefix('sha256:')}"
    first, second, third = (_attested(bake_image, m)[1] for m in ("one", "two", "three"))
    assert first.attestation.config.descriptor.digest == empty

    client.push(first, parse_repository(f"{proxy.host}/team/a"), ["v1"])
    uploads = proxy.count("PUT", put_empty)
    mounted = client.push(second, parse_repository(f"{proxy.host}/team/b"), ["v1"])
    assert proxy.count("POST", rf"mount=sha256(:|%3A){empty[7:]}&from=team%2Fa") == 1
    assert mounted.blobs["mounted"] == (1, 2)
    existed = client.push(third, parse_repository(f"{proxy.host}/team/b"), ["v2"])
    assert proxy.count("HEAD", f"/v2/team/b/blobs/{empty}") == 1
    assert existed.blobs["existed"] == (1, 2)
    assert proxy.count("PUT", put_empty) == uploads == 1
    for repo, tag in (("team/b", "v1"), ("team/b", "v2")):
        source = RegistrySource(registry.host, repo)
        attestation = source.manifest(source.manifest(tag)["manifests"][1]["digest"])
        assert attestation["config"]["digest"] == empty


def _statement_posts(seen, digests) -> list:
    return [s for s in seen if s.method == "POST" and any(d[7:] in s.path for d in digests)]


def test_a_registry_that_ignores_whole_posts_gets_no_body_twice(registry, bake_image, proxy_for):
    """Distribution answers ``POST ?digest=`` with 202 and drops the body: a client
    that saw it once opens the next uploads there with an empty POST."""
    proxy = proxy_for(registry)
    client = make_client()
    first, second = (_attested(bake_image, m)[1] for m in ("one", "two"))
    statements = [b.descriptor.digest for b in second.attestation.layers]

    client.push(first, parse_repository(f"{proxy.host}/team/a"), ["v1"])
    sent = [s for s in proxy.seen if s.method == "POST" and "digest=" in s.path]
    assert sent and all(s.body > 0 and s.status == 202 for s in sent)  # learnt here
    proxy.reset()
    client.push(second, parse_repository(f"{proxy.host}/team/a"), ["v2"])
    assert proxy.count("POST", "digest=") == 0
    assert all(s.body == 0 for s in proxy.seen if s.method == "POST")
    puts = [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]
    assert {d for d in statements if any(d[7:] in s.path for s in puts)} == set(statements)
    source = RegistrySource(registry.host, "team/a")
    _assert_found(buildx_find(source, "v2")[1], second.image)


def test_a_registry_that_takes_whole_posts_keeps_getting_them(bake_image):
    with ReferrersRegistry(whole_posts=True).running() as registry:
        client = make_client()
        for message in ("one", "two"):
            attested = _attested(bake_image, message)[1]
            client.push(attested, parse_repository(f"{registry.host}/team/a"), [message])
            for blob in attested.attestation.layers:
                digest = blob.descriptor.digest
                assert registry.blobs[digest] == blob.data
                uploads = [p for m, p in registry.requests if digest[7:] in p]
                assert len(uploads) == 1 and uploads[0].startswith("/v2/team/a/blobs/uploads/?")
