"""SBOM and provenance of a baked image: Go build info, SPDX validity, reproducibility.

The judges are ``go version -m`` (the Go toolchain's own reader of the
build info we parse) and the SPDX project's ``spdx-tools`` validator.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from scratchd.image.attest import AttestedImage, attest_image
from scratchd.image.build import bake
from scratchd.image.gobuildinfo import read_build_info
from scratchd.image.provenance import ProvenanceInputs
from scratchd.image.sbom import golang_purl
from scratchd.models import BoxDigest, ImageSpec
from tests.image.gobin import build_go_binary, go_version_m

SPEC = ImageSpec(cmd=("/app",), created=1_700_000_000)
INPUTS = ProvenanceInputs(
    repository="cities", ref="refs/heads/main", pipeline="deploy", commit="ab" * 20,
    wercker_yml_sha256="cd" * 32, boxes=(BoxDigest("golang:1.19", "sha256:" + "ef" * 32),),
    builder_id="builder-1", build_id="7", steps=("go build",),
    started_on="2026-01-01T00:00:00Z", finished_on="2026-01-01T00:01:00Z",
)  # fmt: skip


@pytest.fixture(scope="module")
def go_binaries(tmp_path_factory):
    """(plain, stripped like the seed server) Go binaries with two dependencies."""
    plain = build_go_binary(tmp_path_factory.mktemp("go-plain"))
    stripped = build_go_binary(tmp_path_factory.mktemp("go-stripped"), ldflags="-s -w")
    return plain, stripped


@pytest.fixture
def go_tree(tmp_path, go_binaries):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    shutil.copy(go_binaries[1], root / "app")
    (root / "etc" / "motd").write_text("hello\n")
    os.chmod(root / "etc" / "motd", 0o600)
    os.link(root / "etc" / "motd", root / "etc" / "motd.link")
    return root


def _go_tool_modules(text: str) -> list[tuple[str, ...]]:
    """``go version -m`` output → [(kind, path, version, sum)] for mod/dep/=> lines."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.strip("\t").split("\t")
        if fields[0] in ("mod", "dep", "=>"):
            rows.append(tuple((fields + [""] * 4)[:4]))
    return rows


@pytest.mark.parametrize("which", [0, 1], ids=["plain", "stripped"])
def test_build_info_equals_go_version_m(go_binaries, which):
    binary = go_binaries[which]
    info = read_build_info(binary.read_bytes())
    tool = go_version_m(binary)

    assert tool.splitlines()[0].endswith(f": {info.go_version}")
    ours = [("mod", info.main.path, info.main.version, info.main.sum)]
    for dep in info.deps:
        ours.append(("dep", dep.path, dep.version, dep.sum))
        if dep.replace:
            ours.append(("=>", dep.replace.path, dep.replace.version, dep.replace.sum))
    assert ours == _go_tool_modules(tool)
    assert any(d.sum.startswith("h1:") for d in info.deps)  # a real go.sum hash was read


def test_seed_go_server_sbom_matches_go_version_m(tmp_path):
    """The benchmarks' seed (bench/seed.py: the static Go server wercker pushed)."""
    seed_path = Path(__file__).parents[2] / "bench" / "seed.py"
    loader = importlib.util.spec_from_file_location("scratchd_bench_seed", seed_path)
    seed = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(seed)
    (tmp_path / "work").mkdir()
    tree = seed.seed_maker(tmp_path / "work")(tmp_path / "tree")
    image = bake(tree, SPEC, tmp_path / "blobs", inventory=True)
    sbom = _statements(attest_image(image, INPUTS))["https://spdx.dev/Document"]
    packages = {p["name"]: p.get("versionInfo") for p in sbom["predicate"]["packages"]}
    tool = go_version_m(tree / "app")
    for kind, path, version, _ in _go_tool_modules(tool):
        assert packages[path] == version, (kind, path)
    assert packages["stdlib"] == tool.splitlines()[0].rsplit(" ", 1)[1]


def test_non_go_files_have_no_build_info(tmp_path):
    assert read_build_info(b"\x7fELF" + b"\0" * 100) is None
    assert read_build_info(b"#!/bin/sh\necho hi\n") is None


def _statements(attested: AttestedImage) -> dict:
    return {
        layer.descriptor.annotations[0][1]: json.loads(layer.data)
        for layer in attested.attestation.layers
    }


def test_sbom_lists_files_and_go_modules_and_is_valid_spdx(tmp_path, go_tree, go_binaries):
    image = bake(go_tree, SPEC, tmp_path / "blobs")
    attested = attest_image(image, INPUTS, name="cities")
    sbom = _statements(attested)["https://spdx.dev/Document"]["predicate"]
    (tmp_path / "sbom.spdx.json").write_text(json.dumps(sbom))

    assert validate_full_spdx_document(parse_file(str(tmp_path / "sbom.spdx.json"))) == []
    files = {f["fileName"]: f for f in sbom["files"]}
    assert set(files) == {"./app", "./etc/motd", "./etc/motd.link"}
    for name, entry in files.items():
        data = (go_tree / name).read_bytes()
        sums = {c["algorithm"]: c["checksumValue"] for c in entry["checksums"]}
        assert sums["SHA256"] == hashlib.sha256(data).hexdigest()
        assert entry["comment"] == f"mode {os.stat(go_tree / name).st_mode & 0o7777:04o}"
    info = read_build_info(go_binaries[1].read_bytes())
    purls = {
        p["name"]: (p.get("versionInfo"), p["externalRefs"][0]["referenceLocator"])
        for p in sbom["packages"]
        if p["SPDXID"] != "SPDXRef-Image"
    }
    for path, version, _ in [
        (r[1], r[2], r[3]) for r in _go_tool_modules(go_version_m(go_binaries[1])) if r[0] == "dep"
    ]:
        assert purls[path] == (version, golang_purl(path, version))
    assert purls["stdlib"] == (info.go_version, f"pkg:golang/stdlib@{info.go_version}")
    greet = next(p for p in sbom["packages"] if p["name"] == "example.com/greet")
    assert greet["externalRefs"][0]["referenceLocator"] == "pkg:golang/example.com/greet@v1.4.2"
    assert "h1:" in greet["comment"]
    contained = {
        r["relatedSpdxElement"]
        for r in sbom["relationships"]
        if r["relationshipType"] == "CONTAINS"
    }
    assert {p["SPDXID"] for p in sbom["packages"]} - contained == {"SPDXRef-Image"}


def test_sbom_from_the_bake_equals_sbom_from_the_layer(tmp_path, go_tree):
    """What the bake records while writing the layer is what reading the layer gives."""
    (go_tree / "app.link").hardlink_to(go_tree / "app")
    (go_tree / "etc" / "motd.sym").symlink_to("motd")
    (go_tree / ".env").write_text("A=1\n")  # a leading dot is part of the name
    (go_tree / "empty").touch()
    image = bake(go_tree, SPEC, tmp_path / "blobs", inventory=True)
    from_layer = attest_image(replace(image, files=None), INPUTS)
    from_bake = attest_image(image, INPUTS)
    assert from_bake.digest == from_layer.digest
    files = _statements(from_bake)["https://spdx.dev/Document"]["predicate"]["files"]
    assert [f["fileName"] for f in files] == [
        "./.env",
        "./app",
        "./app.link",
        "./empty",
        "./etc/motd",
        "./etc/motd.link",
    ]
    empty = next(f for f in files if f["fileName"] == "./empty")["checksums"][1]
    assert empty["checksumValue"] == hashlib.sha256(b"").hexdigest()


def test_sbom_lists_the_baked_bytes_not_the_tree_changed_afterwards(tmp_path, go_tree):
    """A step's process may rewrite the tree after the bake: the SBOM is the layer's truth."""
    image = bake(go_tree, SPEC, tmp_path / "blobs", inventory=True)
    (go_tree / "etc" / "motd").write_text("changed after the bake\n")
    (go_tree / "late").write_text("added after the bake\n")
    files = _statements(attest_image(image, INPUTS))["https://spdx.dev/Document"]["predicate"]
    names = {f["fileName"]: f["checksums"][1]["checksumValue"] for f in files["files"]}
    assert "./late" not in names
    assert names["./etc/motd"] == hashlib.sha256(b"hello\n").hexdigest()
    assert (
        attest_image(image, INPUTS).digest
        == attest_image(replace(image, files=None), INPUTS).digest
    )


def test_provenance_min_and_max(tmp_path, go_tree):
    image = bake(go_tree, SPEC, tmp_path / "blobs")
    minimal = _statements(attest_image(image, INPUTS))["https://slsa.dev/provenance/v1"]
    full = _statements(attest_image(image, INPUTS, provenance="max"))[
        "https://slsa.dev/provenance/v1"
    ]

    assert minimal["_type"] == "https://in-toto.io/Statement/v1"
    definition = minimal["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {
        "repository": "cities", "ref": "refs/heads/main", "pipeline": "deploy"
    }  # fmt: skip
    assert definition["resolvedDependencies"] == [
        {"uri": "git+scratchd:repo/cities@refs/heads/main", "digest": {"gitCommit": "ab" * 20}},
        {"name": "wercker.yml", "digest": {"sha256": "cd" * 32}},
        {
            "uri": "docker-image://golang:1.19",
            "digest": {"sha256": "ef" * 32},
            "annotations": {"digestOf": "manifest"},
        },
    ]
    assert minimal["predicate"]["runDetails"] == {"builder": {"id": "builder-1"}}
    assert full["predicate"]["runDetails"]["metadata"] == {
        "invocationId": "7",
        "startedOn": "2026-01-01T00:00:00Z",
        "finishedOn": "2026-01-01T00:01:00Z",
    }
    assert full["predicate"]["buildDefinition"]["internalParameters"] == {"steps": ["go build"]}


def test_provenance_never_carries_url_credentials(tmp_path, go_tree):
    image = bake(go_tree, SPEC, tmp_path / "blobs")
    leaky = replace(INPUTS, source_uri="https://bot:tok-Secret-9@git.example.org/a.git")
    attested = attest_image(image, leaky, sbom="none")
    assert b"tok-Secret-9" not in attested.attestation.layers[0].data
    statement = _statements(attested)["https://slsa.dev/provenance/v1"]
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["uri"] == "git+https://git.example.org/a.git@refs/heads/main"


def test_attestation_keeps_platform_digest_and_index_is_reproducible(tmp_path, go_tree):
    plain = bake(go_tree, SPEC, tmp_path / "one")
    again = bake(go_tree, SPEC, tmp_path / "two")
    first = attest_image(plain, INPUTS)
    second = attest_image(again, replace(INPUTS, build_id="8"))

    assert first.image.digest == plain.digest  # unchanged by attestation
    assert json.loads(first.index)["manifests"][0]["digest"] == plain.digest
    assert first.digest == second.digest  # another build of the same commit
    maxed = attest_image(again, INPUTS, provenance="max")
    assert maxed.digest != first.digest  # timestamps and the build id only at "max"


def test_zstd_layers_are_read_too(tmp_path, go_tree):
    spec = ImageSpec(cmd=("/app",), oci=True, compression="zstd")
    sbom = _statements(
        attest_image(bake(go_tree, spec, tmp_path / "b"), sbom="spdx", provenance="none")
    )
    assert len(sbom["https://spdx.dev/Document"]["predicate"]["files"]) == 3
