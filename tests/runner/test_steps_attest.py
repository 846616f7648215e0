"""Daemon pushes carry SBOM and provenance; the index digest is the same for every build.

Runs internal/docker-scratch-push through the executor (host backend) to the
reference registry and reads the result back with the spec-written readers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace

from scratchd.image.attest import AttestSettings
from scratchd.image.provenance import without_userinfo
from scratchd.models import BuildStatus
from scratchd.pipeline.compile import CompileInput, plan_build
from scratchd.pipeline.plan import Box, Pipeline, Plan, Step
from scratchd.redact import Masker
from scratchd.runner.executor import Executor
from scratchd.runner.host import HostBackend
from scratchd.runner.steps.publish import registry_client_factory
from tests.registry.readers import LayoutSource, RegistrySource, buildx_find, buildx_walk
from tests.runner.test_steps_scratch_push import COMMIT

TOKEN = "glpat-Secret-Token-123"
WERCKER_YML = "build:\n  steps:\n    - script:\n        code: cp hello.sh $WERCKER_OUTPUT_DIR/\n"


def build(
    tmp, props, *, attest=None, build_id="", image_store=None, commit=COMMIT, backend=None, box=None
):
    source = tmp / "source"
    source.mkdir(exist_ok=True)
    (source / "hello.sh").write_text("#!/bin/sh\necho hello\n")
    (source / "wercker.yml").write_text(WERCKER_YML)
    plan = Plan(
        path="wercker.yml",
        box=Box(id=box) if box else None,
        pipelines=(
            Pipeline(
                "build", steps=(Step("script", "copy", code="cp hello.sh $WERCKER_OUTPUT_DIR/"),)
            ),
            Pipeline("deploy", steps=(Step("internal/docker-scratch-push", "push", props),)),
        ),
    )
    executor = Executor(
        lambda kind: (backend or HostBackend)(), None,
        registry_client_factory=registry_client_factory(),
        image_store=image_store, attest=attest,
    )  # fmt: skip
    n = len(list(tmp.glob("work*")))
    compiled = plan_build(plan, CompileInput(
        text=WERCKER_YML, path="wercker.yml", commit=commit, source=source,
        work_dir=tmp / f"work{n}", cache_dir=tmp / "cache", build_id=build_id,
        executor="docker" if backend else "host",
    ))  # fmt: skip
    result = executor.run(compiled, threading.Event(), Masker(compiled.secret_values()))
    assert result.status == BuildStatus.PASSED, result.output
    return result


def test_daemon_push_attaches_reproducible_attestations(tmp_path, registry):
    commit = replace(COMMIT, remote_url=f"https://ci:{TOKEN}@git.example.org/acme/app")
    props = (("repository", f"{registry.host}/acme/app"), ("tag", "v1"))
    first = build(tmp_path, props, build_id="101", commit=commit)
    second = build(tmp_path, props, build_id="102", commit=commit)

    assert first.digests == second.digests  # the index digest, build after build
    source = RegistrySource(registry.host, "acme/app")
    platform, found = buildx_find(source, "v1")
    assert first.digests[0] != platform
    assert first.platform_digests == second.platform_digests == (platform,)  # for the state DB
    provenance = found["provenance"]["predicate"]
    definition = provenance["buildDefinition"]
    assert definition["externalParameters"] == {
        "repository": "app", "ref": "refs/heads/main", "pipeline": "deploy"
    }  # fmt: skip
    assert definition["resolvedDependencies"][:2] == [
        {
            "uri": "git+https://git.example.org/acme/app@refs/heads/main",
            "digest": {"gitCommit": COMMIT.sha},
        },
        {
            "name": "wercker.yml",
            "digest": {"sha256": hashlib.sha256(WERCKER_YML.encode()).hexdigest()},
        },
    ]
    assert "metadata" not in provenance["runDetails"]  # no build id, no time at "min"
    assert {f["fileName"] for f in found["sbom"]["predicate"]["files"]} == {"./hello.sh"}
    everything = json.dumps(found) + first.output + second.output
    assert TOKEN not in everything


def test_box_run_by_docker_is_a_resolved_dependency_that_says_what_its_digest_is(
    tmp_path, registry, busybox_box, docker_client, new_docker_backend
):
    """The local test box was never pulled, so it has no manifest digest: its image ID
    is recorded and marked as the digest of the image config, not of a manifest."""
    props = (("repository", f"{registry.host}/acme/boxed"), ("tag", "v1"))
    build(tmp_path, props, backend=new_docker_backend, box=busybox_box)
    _, found = buildx_find(RegistrySource(registry.host, "acme/boxed"), "v1")
    deps = found["provenance"]["predicate"]["buildDefinition"]["resolvedDependencies"]
    image_id = docker_client.images.get(busybox_box).id
    assert deps[2:] == [
        {
            "uri": f"docker-image://{busybox_box}",
            "digest": {"sha256": image_id.removeprefix("sha256:")},
            "annotations": {"digestOf": "image-config"},
        }
    ]


def test_host_backend_lists_no_box_it_did_not_run(tmp_path, registry):
    props = (("repository", f"{registry.host}/acme/hostbox"), ("tag", "v1"))
    build(tmp_path, props, box="golang@sha256:" + "ab" * 32)
    _, found = buildx_find(RegistrySource(registry.host, "acme/hostbox"), "v1")
    deps = found["provenance"]["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d.get("name") or d["uri"][:4] for d in deps] == ["git+", "wercker.yml"]


def test_provenance_max_carries_the_build_id_and_config_can_turn_both_off(tmp_path, registry):
    props = (("repository", f"{registry.host}/acme/max"), ("tag", "v1"))
    build(
        tmp_path, props, attest=AttestSettings("spdx", "max", "https://ci.example/b"), build_id="7"
    )
    _, found = buildx_find(RegistrySource(registry.host, "acme/max"), "v1")
    run = found["provenance"]["predicate"]["runDetails"]
    assert run["builder"] == {"id": "https://ci.example/b"}
    assert run["metadata"]["invocationId"] == "7" and "finishedOn" in run["metadata"]

    off = AttestSettings("none", "none")
    plain = build(
        tmp_path, (("repository", f"{registry.host}/acme/off"), ("tag", "v1")), attest=off
    )
    manifest = RegistrySource(registry.host, "acme/off").manifest("v1")
    assert "manifests" not in manifest and "layers" in manifest
    assert plain.digests[0].startswith("sha256:")


def test_local_store_carries_attestations(tmp_path):
    store = tmp_path / "images"
    result = build(tmp_path, (("tag", "v2"),), image_store=store)
    index = json.loads((store / "index.json").read_text())
    platform, found = buildx_walk(LayoutSource(store), index)
    assert platform == result.digests[0]
    assert set(found) == {"sbom", "provenance"}


def test_userinfo_is_stripped_from_source_urls():
    assert without_userinfo(f"https://ci:{TOKEN}@h.example/a.git") == "https://h.example/a.git"
    assert without_userinfo("git@h.example:a.git") == "git@h.example:a.git"
    assert without_userinfo("/srv/git/a.git") == "/srv/git/a.git"
