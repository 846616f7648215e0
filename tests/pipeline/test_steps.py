"""Step ids split and classified as wercker did; option tables are consistent."""

from __future__ import annotations

import pytest

from scratchd.pipeline import steps
from scratchd.pipeline.steps import StepRef, classify, parse_step_id, property_env


@pytest.mark.parametrize(
    ("step_id", "ref", "kind"),
    [
        ("script", StepRef("script", "wercker", "script", "*"), steps.SCRIPT),
        ("wercker/script@1.0", StepRef("wercker/script@1.0", "wercker", "script", "1.0"), "script"),
        ("npm-install", StepRef("npm-install", "wercker", "npm-install", "*"), steps.BUILTIN),
        ("wercker/npm-install@1.1.4",
         StepRef("wercker/npm-install@1.1.4", "wercker", "npm-install", "1.1.4"), steps.BUILTIN),
        ("asux/bundle-install@1.1.8",  # another owner's fork may differ: not the built-in
         StepRef("asux/bundle-install@1.1.8", "asux", "bundle-install", "1.1.8"), steps.REGISTRY),
        ("hipchat-notify", StepRef("hipchat-notify", "wercker", "hipchat-notify", "*"),
         steps.REGISTRY),
        ("wercker/golint@1.0.0", StepRef("wercker/golint@1.0.0", "wercker", "golint", "1.0.0"),
         steps.REGISTRY),
        ("internal/docker-scratch-push",
         StepRef("internal/docker-scratch-push", "internal", "docker-scratch-push", "*"),
         steps.INTERNAL),
        ("internal/watch", StepRef("internal/watch", "internal", "watch", "*"), steps.RETIRED),
        ('lint "file://steps/lint"', StepRef("lint", "wercker", "lint", "*", "file://steps/lint"),
         steps.LOCAL),
        ("lint `file://a b`", StepRef("lint", "wercker", "lint", "*", "file://a b"), steps.LOCAL),
        ("file://tools/lint/", StepRef("file://tools/lint/", "wercker", "lint", "*",
         "file://tools/lint/"), steps.LOCAL),
        ('x "https://example.com/x.tar"',
         StepRef("x", "wercker", "x", "*", "https://example.com/x.tar"), steps.REGISTRY),
    ],
)  # fmt: skip
def test_parse_and_classify(step_id, ref, kind):
    assert parse_step_id(step_id) == ref
    assert classify(ref) == kind


@pytest.mark.parametrize(
    "bad", ["", "npm install", "/x", "owner/", "a@", 'x "unterminated', "file://", "file:///"]
)
def test_malformed_ids(bad):
    assert parse_step_id(bad) is None


def test_vendored_dir_and_display_names():
    ref = parse_step_id("wercker/golint@1.0.0")
    assert steps.vendored_dir(ref) == ".scratchd/steps/golint"
    assert steps.display_name(ref, "") == "golint"
    assert steps.display_name(ref, "lint it") == "lint it"
    push = parse_step_id("internal/docker-scratch-push")
    assert steps.display_name(push, "") == "docker scratch'n'push"


def test_property_env_follows_wercker_naming():
    props = (("package-dir", "x"), ("code", "c"), ("name", "n"), ("go_version", "1"))
    assert property_env("setup-go-workspace", props) == [
        ("WERCKER_SETUP_GO_WORKSPACE_PACKAGE_DIR", "x"),
        ("WERCKER_SETUP_GO_WORKSPACE_GO_VERSION", "1"),
    ]


def test_option_tables_are_consistent():
    for step_id, options in steps.OPTIONS.items():
        assert not options & steps.IGNORED_OPTIONS.get(step_id, frozenset()), step_id
        assert set(steps.REQUIRED_OPTIONS.get(step_id, ())) <= options
    # the documented options of the scratch push step (DESIGN.md) are all accepted
    documented = "username password registry repository tag cmd entrypoint ports env labels"
    documented += " working-dir user volumes stopsignal"
    assert set(documented.split()) <= steps.OPTIONS["internal/docker-scratch-push"]
