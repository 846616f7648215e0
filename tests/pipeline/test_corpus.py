"""A corpus of wercker.yml files in the styles of public repositories.

Each ``corpus/NAME.yml`` has a ``corpus/NAME.expected`` beside it: the lint
findings (``FILE:LINE:COL: message``, FILE spelled ``wercker.yml``) and a
summary of the Plan, or ``(no plan: errors)``. Every expected file starts with
``# source: OWNER/REPO PATH`` lines naming the public file the YAML was
modelled on, optionally followed by a note in parentheses (what was changed
or introduced, for files that test a mistake); the YAML itself is written
anew, in that file's style. The expected files were written
from wercker's semantics and reviewed line by line; to refresh them after an
intended change, run with ``SCRATCHD_REGEN_CORPUS=1`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from scratchd.errors import PipelineSyntaxError
from scratchd.pipeline.lint import lint
from scratchd.pipeline.parse import parse_plan
from scratchd.pipeline.plan import Box, Plan, Step
from scratchd.pipeline.selection import select

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.yml"))


def _box(box: Box | None) -> str:
    if box is None:
        return "-"
    parts = [box.image]
    for field in ("name", "cmd", "entrypoint", "username", "password", "registry", "volumes"):
        if getattr(box, field):
            parts.append(f"{field}={getattr(box, field)!r}")
    if box.env:
        parts.append(f"env={dict(box.env)!r}")
    if box.ports:
        parts.append(f"ports={list(box.ports)!r}")
    return " ".join(parts)


def _step(step: Step) -> list[str]:
    head = f"    {step.line}:{step.column} {step.kind} {step.id!r} name={step.name!r}"
    if step.url:
        head += f" url={step.url!r}"
    if step.cwd:
        head += f" cwd={step.cwd!r}"
    lines = [head]
    lines += [f"      {k} = {v!r}" for k, v in step.properties]
    if step.code:
        lines.append(f"      code = {step.code!r}")
    return lines


def summarize(plan: Plan) -> list[str]:
    out = [
        f"box: {_box(plan.box)}",
        f"timeouts: command={plan.command_timeout}s no-response={plan.no_response_timeout}s",
    ]
    if plan.source_dir:
        out.append(f"source-dir: {plan.source_dir}")
    out += [f"service: {_box(s)}" for s in plan.services]
    for pipeline in plan.pipelines:
        out.append(f"pipeline {pipeline.name} (line {pipeline.line}) box: {_box(pipeline.box)}")
        if pipeline.base_path or pipeline.docker:
            out.append(f"  base-path={pipeline.base_path!r} docker={pipeline.docker}")
        out += [f"  service: {_box(s)}" for s in pipeline.services]
        for label, steps in [("steps", pipeline.steps), ("after-steps", pipeline.after_steps)]:
            if steps:
                out.append(f"  {label}:")
                out += [line for step in steps for line in _step(step)]
        for target, steps in pipeline.targets:
            out.append(f"  target {target}:")
            out += [line for step in steps for line in _step(step)]
    for workflow in plan.workflows:
        out.append(f"workflow {workflow.name}:")
        for node in workflow.pipelines:
            out.append(
                f"  {node.name} -> pipeline {node.pipeline} requires={list(node.requires)} "
                f"only={list(node.only)} ignore={list(node.ignore)}"
            )
        for branch in ("master", "feature/x"):
            names = [p.name for p in select(plan, branch=branch)]
            out.append(f"  on {branch}: {', '.join(names) or 'nothing'}")
    return out


def render(text: str) -> str:
    findings = lint(text, "wercker.yml")
    lines = ["# lint"] + [d.format("wercker.yml") for d in findings] + ["# plan"]
    try:
        lines += summarize(parse_plan(text, "wercker.yml"))
    except PipelineSyntaxError:
        lines.append("(no plan: errors)")
    return "\n".join(lines) + "\n"


SOURCE = "# source: "
#: ``# source: owner/repo path/in/repo`` and an optional ``(note)``.
CITATION = re.compile(r"# source: [\w.-]+/[\w.-]+ [^\s()]+( \(.+\))?")


def _split(expected: str) -> tuple[str, str]:
    """(the ``# source:`` header, the rest) of an expected file."""
    lines = expected.splitlines(keepends=True)
    head = [line for line in lines if line.startswith(SOURCE)]
    return "".join(head), "".join(lines[len(head) :])


def test_the_corpus_is_large_enough():
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_files_cite_the_public_file_they_were_modelled_on(path: Path):
    head, _ = _split(path.with_suffix(".expected").read_text(encoding="utf-8"))
    assert head, "no '# source: owner/repo path' line"
    for line in head.splitlines():
        assert CITATION.fullmatch(line), line


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file(path: Path):
    text = path.read_bytes().decode("utf-8")
    got = render(text)
    expected_path = path.with_suffix(".expected")
    head, expected = _split(expected_path.read_text(encoding="utf-8"))
    if os.environ.get("SCRATCHD_REGEN_CORPUS") == "1":
        expected_path.write_text(head + got, encoding="utf-8")
        expected = got
    assert got == expected


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_lint_errors_match_parse_errors(path: Path):
    """A file lints clean of errors exactly when parse_plan accepts it."""
    text = path.read_text(encoding="utf-8")
    errors = [d for d in lint(text, "wercker.yml") if d.severity == "error"]
    try:
        plan = parse_plan(text, "wercker.yml")
    except PipelineSyntaxError as exc:
        assert errors and (exc.line, exc.column, exc.reason) == (
            errors[0].line,
            errors[0].col,
            errors[0].message,
        )
    else:
        assert not errors
        assert len(plan.warnings) == len(lint(text, "wercker.yml"))
