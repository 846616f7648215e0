"""No input makes the parser or lint crash: only PipelineError, never a traceback."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchd.errors import PipelineError
from scratchd.pipeline.lint import lint
from scratchd.pipeline.parse import decode, parse_plan

WORDS = ["box", "services", "build", "deploy", "steps", "after-steps", "script", "code", "name",
         "cwd", "id", "tag", "env", "ports", "internal/docker-scratch-push", "internal/watch",
         "repository", "tagz", "command-timeout", "source-dir", "base-path", "docker", "<<",
         "wercker/golint@1.0", 'x "file://s"', "yes", "1.5", "0x1F", "", "~", "$HOME"]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=8),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=25,
)


def check(text: str) -> None:
    """lint returns findings; parse_plan returns a Plan or raises PipelineError."""
    findings = lint(text, "wercker.yml")
    assert all(d.severity in ("error", "warning") for d in findings)
    errors = [d for d in findings if d.severity == "error"]
    try:
        parse_plan(text, "wercker.yml")
    except PipelineError:
        assert errors
    else:
        assert not errors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_yaml_never_crashes(doc):
    check(yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \t\n\r\x00") + WORDS), max_size=60))
def test_yaml_punctuation_soup_never_crashes(pieces):
    check("".join(pieces))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_binary_junk_never_crashes(data):
    try:
        text = decode(data, "wercker.yml")
    except PipelineError:
        return
    check(text)


INSERTS = ["\t", ":", "- ", "&a ", "*a", "\n  ", "'", "<<: *a\n", "!!str ", "? "]


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(min_value=0, max_value=400), st.sampled_from(INSERTS))
def test_mutated_yaml_never_crashes(doc, position, insert):
    text = yaml.safe_dump(doc, default_flow_style=False)
    position = min(position, len(text))
    check(text[:position] + insert + text[position:])
