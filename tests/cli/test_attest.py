"""``scratchd bake --push`` attaches SBOM and provenance; ``scratchd inspect`` reads them back."""

from __future__ import annotations

import json

import requests

from scratchd.image.build import bake
from scratchd.models import Commit, ImageSpec, Trigger
from tests.cli import test_push
from tests.cli.test_push import scratchd
from tests.registry.readers import RegistrySource, buildx_find

env, app_dir = test_push.env, test_push.app_dir  # the same fixtures as the push tests


def _bake_push(app, env, repo, *extra):
    result = scratchd(
        "bake", str(app), "--cmd", "/bin/busybox cat /greeting", "--revision", "ab" * 20,
        "--push", repo, "--tag", "v1", "--json", *extra, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_push_attaches_by_default_and_inspect_reads_it(registry, app_dir, env):
    out = _bake_push(app_dir, env, f"{registry.host}/cli/att")
    platform, found = buildx_find(RegistrySource(registry.host, "cli/att"), "v1")

    assert out["digest"] != out["manifest"]["digest"] == platform == out["platform_digest"]
    assert out["referrers"] == "tag sha256-" + platform.removeprefix("sha256:")
    assert set(found) == {"sbom", "provenance"}
    shown = scratchd("inspect", f"{registry.host}/cli/att:v1", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "SPDX-2.3: 2 files" in shown.stdout
    assert f"gitCommit:{'ab' * 20}" in shown.stdout
    docs = json.loads(scratchd("inspect", f"{registry.host}/cli/att:v1", "--json", env=env).stdout)
    assert docs["digest"] == out["digest"] and docs["manifest"] == platform
    assert docs["sbom"] == found["sbom"]["predicate"]
    assert docs["provenance"] == found["provenance"]


def test_same_input_gives_same_index_digest_and_unchanged_manifest(
    registry,
    app_dir,
    env,
    tmp_path,
):
    one = _bake_push(app_dir, env, f"{registry.host}/cli/one")
    two = _bake_push(app_dir, env, f"{registry.host}/cli/one")
    plain = _bake_push(
        app_dir, env, f"{registry.host}/cli/plain", "--sbom", "none", "--provenance", "none"
    )
    spec = ImageSpec(cmd=("/bin/busybox", "cat", "/greeting"), revision="ab" * 20)

    assert one["digest"] == two["digest"]
    assert plain["digest"] == one["manifest"]["digest"]
    assert plain["digest"] == bake(app_dir, spec, tmp_path / "blobs").digest
    tags = requests.get(f"{registry.url}/v2/cli/plain/tags/list", timeout=10).json()["tags"]
    assert tags == ["v1"]  # no attestation, no fallback tag
    none = scratchd("inspect", f"{registry.host}/cli/plain:v1", env=env)
    assert none.returncode == 1 and "sbom        none" in none.stdout


def test_inspect_an_oci_layout(app_dir, env, tmp_path):
    layout = tmp_path / "layout"
    baked = scratchd(
        "bake", str(app_dir), "--oci-layout", str(layout), "--tag", "v2", "--sbom", "spdx",
        "--provenance", "max", "--builder-id", "https://ci.example/b", env=env,
    )  # fmt: skip
    assert baked.returncode == 0, baked.stderr
    docs = json.loads(scratchd("inspect", f"{layout}:v2", "--json", env=env).stdout)
    assert docs["digest"] == baked.stdout.strip()
    assert docs["provenance"]["predicate"]["runDetails"]["builder"]["id"] == "https://ci.example/b"
    assert "startedOn" in docs["provenance"]["predicate"]["runDetails"]["metadata"]
    assert {f["fileName"] for f in docs["sbom"]["files"]} == {"./bin/busybox", "./greeting"}


def test_inspect_names_the_builds_that_pushed_the_image(registry, app_dir, env, tmp_path):
    """The default attestation names no build (it stays reproducible); the state DB does."""
    from tests.cli.state_env import make_env

    out = _bake_push(app_dir, env, f"{registry.host}/cli/found")
    state = make_env(tmp_path / "daemon")
    store = state.store()
    store.enqueue([Commit("app", "refs/heads/main", "ab" * 20)], Trigger.PUSH)
    job = store.claim_next(max_running=1)
    # what the scheduler records for a daemon push (tests/test_scheduler.py)
    store.mark_passed(job.id, [out["digest"]], platforms=[out["platform_digest"]])
    store.close()
    config = str(state.config)

    shown = scratchd("inspect", f"{registry.host}/cli/found:v1", "--config", config, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"built by    build {job.id} (app main {'ab' * 6}, passed)" in shown.stdout
    by_platform = scratchd(
        "inspect", f"{registry.host}/cli/found@{out['platform_digest']}", "--json",
        "--config", config, env=env,
    )  # fmt: skip
    assert [b["id"] for b in json.loads(by_platform.stdout)["builds"]] == [job.id]
    elsewhere = scratchd("inspect", f"{registry.host}/cli/found:v1", env=env)  # no state DB
    assert elsewhere.returncode == 0 and "built by" not in elsewhere.stdout
