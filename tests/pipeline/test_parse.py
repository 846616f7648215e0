"""wercker.yml → Plan: shapes, positions, wercker's conversions, errors."""

from __future__ import annotations

import json

import pytest

from scratchd.errors import PipelineError, PipelineSyntaxError
from scratchd.pipeline.lint import lint, lint_file
from scratchd.pipeline.parse import load_plan, parse_plan
from scratchd.pipeline.plan import DEFAULT_COMMAND_TIMEOUT


def steps_of(text: str, pipeline: str = "build"):
    return parse_plan(text, "wercker.yml").pipeline(pipeline).steps


def test_three_step_shapes_give_the_same_step():
    nested = "build:\n  steps:\n    - script:\n        name: nm\n        code: make\n"
    flat = "build:\n  steps:\n    - script:\n      name: nm\n      code: make\n"
    inline = "build:\n  steps:\n    - {script: {name: nm, code: make}}\n"
    shapes = [steps_of(t)[0] for t in (nested, flat, inline)]
    assert {(s.id, s.name, s.code, s.kind) for s in shapes} == {
        ("script", "nm", "set -e\nmake", "script")
    }
    bare = steps_of("build:\n  steps:\n    - hipchat-notify\n")[0]  # npm-install is built in
    assert (bare.id, bare.name, bare.kind, bare.properties) == (
        "hipchat-notify",
        "hipchat-notify",
        "registry",
        (),
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("make", "set -e\nmake"),
        ("#!/bin/bash\nmake", "#!/bin/bash\nmake"),
        (" #!/bin/bash", "set -e\n #!/bin/bash"),  # only a shebang at the very start counts
        ("", "set -e\n"),
    ],
)
def test_set_e_prepended_unless_shebang(code, expected):
    text = f"build:\n  steps:\n    - script:\n        code: {json.dumps(code)}\n"
    assert steps_of(text)[0].code == expected


def test_positions_are_one_based_and_point_at_the_step_id():
    text = "box: golang\nbuild:\n  steps:\n    - npm-install\n    -   script:\n          code: x\n"
    first, second = steps_of(text)
    assert (first.line, first.column) == (4, 7)
    assert (second.line, second.column) == (5, 9)


def test_warnings_are_formatted_in_the_plan():
    plan = parse_plan("build:\n  steps:\n    - internal/watch\n", "ci/wercker.yml")
    assert plan.warnings == (
        "ci/wercker.yml:3:7: warning: step 'internal/watch' will not run here: "
        "it reloads code for 'wercker dev'",
    )


def test_settings_and_inheritance():
    text = (
        "box: {id: golang, tag: '1.22'}\n"
        "services: [redis, {id: 'quay.io/org/pg:15', name: db}]\n"
        "command-timeout: 30\nno-response-timeout: 2\nsource-dir: app\n"
        "build:\n  steps: [script]\n"
        "deploy:\n  box: busybox\n  services: [memcached]\n  steps: [script]\n"
    )
    plan = parse_plan(text, "wercker.yml")
    assert (plan.command_timeout, plan.no_response_timeout, plan.source_dir) == (1800, 120, "app")
    build, deploy = plan.pipeline("build"), plan.pipeline("deploy")
    assert plan.box_for(build).image == "golang:1.22"
    assert plan.box_for(deploy).image == "busybox:latest"
    assert [s.name for s in plan.services_for(build)] == ["redis", "db"]
    assert [s.name for s in plan.services_for(deploy)] == ["memcached"]


def test_option_values_become_text_like_wercker():
    text = "build:\n  steps:\n    - s:\n        a: yes\n        b: 0x10\n        c: 1.5\n"
    plan = parse_plan(text, "wercker.yml")
    assert dict(plan.pipeline("build").steps[0].properties) == {"a": "true", "b": "16", "c": ""}
    assert any("quote it" in w for w in plan.warnings)


def test_top_level_settings_wercker_could_not_read_are_ignored_with_a_warning():
    """wercker's config reader let yaml.v2 type errors of top-level keys pass (todo-service)."""
    text = "services: redis\ncommand-timeout: thirty\nbuild:\n  steps:\n    - script: {code: x}\n"
    plan = parse_plan(text, "wercker.yml")
    assert plan.services == ()
    assert plan.command_timeout == DEFAULT_COMMAND_TIMEOUT
    assert [w.split(": warning: ")[1].split(";")[0] for w in plan.warnings] == [
        "services must be a list, not text",
        "command-timeout must be a whole number of minutes",
    ]


def test_a_pipeline_key_at_the_top_level_says_where_it_belongs():
    """A real mis-indented file: 'steps' beside its pipeline instead of under it."""
    text = "build:\nsteps:\n  - script: {code: x}\ndeploy:\n  steps: []\nafter-steps: []\n"
    warnings = [w.split(": warning: ")[1] for w in parse_plan(text, "wercker.yml").warnings]
    assert warnings == [
        "pipeline 'build' has no steps",
        "'steps' belongs inside a pipeline, not at the top level: indent it under 'build:' "
        "above, which has no value (it is skipped, as wercker skipped it)",
        "'after-steps' belongs inside a pipeline, not at the top level: indent it under the "
        "pipeline it is for (it is skipped, as wercker skipped it)",
    ]


def test_services_that_are_not_a_list_in_a_pipeline_are_an_error():
    """There wercker's reader dropped the whole pipeline."""
    with pytest.raises(PipelineSyntaxError, match="services must be a list, not text"):
        parse_plan("build:\n  services: redis\n  steps:\n    - script:\n        code: make\n", "w")


def test_a_duplicate_key_warns_and_the_later_one_wins_as_in_wercker():
    """yaml.v2's non-strict Unmarshal (wercker's) kept the later value of a repeated key."""
    text = (
        "command-timeout: 30\nbuild:\n  steps:\n    - s:\n        a: 1\n        a: 2\n"
        "command-timeout: 60\n"
    )
    plan = parse_plan(text, "wercker.yml")
    assert plan.command_timeout == 3600
    assert dict(plan.pipeline("build").steps[0].properties) == {"a": "2"}
    assert [w for w in plan.warnings if "duplicate key" in w] == [
        "wercker.yml:6:9: warning: duplicate key 'a' (first given on line 5): "
        "the later one is used, as wercker used it",
        "wercker.yml:7:1: warning: duplicate key 'command-timeout' (first given on line 1): "
        "the later one is used, as wercker used it",
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("build:\n  steps: make\n", (2, 10), "steps must be a list, not text"),
        ("box: [a]\n", (1, 6), "box must be a string or a map, not a list"),
        ("build:\n\tsteps: []\n", (2, 1), "tab used for indentation"),
        (
            "build:\n  steps:\n    - s:\n        name: 'x\n        code: y\n",
            (4, 15),
            "the ' opened here is never closed",
        ),
        ("build: {<<: [1]}\n", (1, 13), "bad '<<' merge: expected a map or a list of maps"),
        ("build: &x {<<: *x}\n", (1, 8), "bad '<<' merge: a map merges itself"),
        ("box: a\x00\n", (1, 7), "character not allowed in YAML"),
        ("build:\n  steps:\n    - name: x\n      script:\n", (3, 7), "put the step id"),
        ("a: b\n---\nc: d\n", (2, 1), "invalid YAML: expected a single document"),
        ("[" * 5000, (1, 1), "nested too deeply"),
    ],
)
def test_errors_name_line_and_column(text, where, message):
    with pytest.raises(PipelineSyntaxError) as info:
        parse_plan(text, "w.yml")
    assert (info.value.line, info.value.column) == where
    assert message in info.value.reason
    assert str(info.value).startswith(f"w.yml:{where[0]}:{where[1]}: ")


def test_load_plan_reads_files(tmp_path):
    path = tmp_path / "wercker.yml"
    path.write_bytes(b"\xef\xbb\xbfbuild:\n  steps: [script]\n")  # a BOM is fine
    assert load_plan(path).pipeline("build").steps[0].id == "script"
    path.write_bytes(b"build:\n  steps: [\xff]\n")
    with pytest.raises(
        PipelineSyntaxError, match=r"wercker.yml:2:11: not UTF-8 text \(byte 0xff\)"
    ):
        load_plan(path)
    with pytest.raises(PipelineError, match="cannot read"):
        load_plan(tmp_path / "missing.yml")


def test_credentials_never_appear_in_findings():
    text = (
        "box: {id: private/box, username: u, password: hunter2}\n"
        "deploy:\n  steps:\n    - internal/docker-scratch-push:\n"
        "        repository: r/a\n        password: hunter2\n        tagz: x\n"
    )
    found = lint(text, "wercker.yml")
    assert len(found) == 4  # no build pipeline, two written passwords, the typo
    assert all("hunter2" not in d.message for d in found)


def test_lint_sees_vendored_steps_in_the_repository(tmp_path):
    text = 'build:\n  steps:\n    - wercker/golint@1.0.0\n    - mine "file://tools/mine"\n'
    (tmp_path / "wercker.yml").write_text(text)
    before = [d.message for d in lint_file(tmp_path / "wercker.yml")]
    assert any(".scratchd/steps/golint/" in m for m in before)
    assert any("tools/mine/run.sh does not exist" in m for m in before)
    for step_dir in (".scratchd/steps/golint", "tools/mine"):
        (tmp_path / step_dir).mkdir(parents=True)
        (tmp_path / step_dir / "run.sh").write_text("echo hi\n")
    assert lint_file(tmp_path / "wercker.yml") == []


def test_merge_chains_stay_linear():
    """Each level merges the previous one ten times: a "billion laughs" for naive merging."""
    levels = ["l0: &l0 {code: make, name: base}"]
    for i in range(1, 40):
        copies = ", ".join([f"*l{i - 1}"] * 10)
        levels.append(f"l{i}: &l{i} {{<<: [{copies}], name: level{i}}}")
    text = "\n".join(f".{line}" for line in levels) + "\nbuild:\n  steps:\n    - script: *l39\n"
    step = steps_of(text)[0]
    assert (step.name, step.code) == ("level39", "set -e\nmake")
