"""``Secret`` is not a string: every way text is made from it shows ``***`` or fails."""

from __future__ import annotations

import ast
import copy
import json
import logging
import pickle
import sqlite3
import subprocess
from pathlib import Path

import pytest

from scratchd.models import Secret

VALUE = "hunter2-value"
PACKAGE = Path(__file__).resolve().parents[1] / "daemon" / "scratchd"

#: The points of use: the only modules that may call ``.reveal()``.
REVEALERS = {
    "redact.py": "the masker must know the values it masks",
    "pipeline/compile.py": "the step environment, resolved once per build",
    "expand.py": "expansion into step environment",
    "notify/webhook.py": "the HMAC signing key and the webhook URL, at send time",
    "notify/apprise_sink.py": "the apprise URL handed to apprise, at send time",
    "config/notify.py": "checking a sink URL's form (the value is never echoed)",
    "cli/check_config.py": "checking an apprise URL's form (the value is never echoed)",
    "registry/auth.py": "Authorization header, token request",
    "runner/docker_images.py": "docker pull auth",
    "runner/steps/docker_push.py": "docker push auth",
}


def test_formatting_shows_the_mask():
    s = Secret(VALUE)
    assert str(s) == "***"
    assert repr(s) == "Secret('***')"
    assert f"{s}" == "***" and f"{s!s}" == "***" and f"{s:>5}" == "***"
    assert "{}".format(s) == "***"  # noqa: UP032
    assert format(s, "") == "***"
    assert "pw=%s" % s == "pw=***"  # noqa: UP031
    assert "pw=%r" % (s,) == "pw=Secret('***')"  # noqa: UP031
    assert VALUE not in repr({"k": s}) and VALUE not in str([s])


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: "Basic " + s,
        lambda s: s + "x",
        lambda s: "".join([s]),
        lambda s: ",".join(["a", s]),
        lambda s: json.dumps(s),
        lambda s: json.dumps({"password": s}),
        lambda s: s.encode(),
        lambda s: s % (),
        lambda s: s * 2,
        lambda s: list(s),
        lambda s: len(s),
        lambda s: s[0],
        lambda s: "x" in s,
        lambda s: pickle.dumps(s),
        lambda s: bytes(s, "utf-8"),
    ],
)
def test_operations_that_would_copy_the_value_fail_loudly(operation):
    with pytest.raises(TypeError):
        operation(Secret(VALUE))


def test_it_cannot_be_written_to_sqlite_or_a_process_environment():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT)")
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("INSERT INTO t VALUES (?)", (Secret(VALUE),))
    with pytest.raises(TypeError):
        subprocess.run(["true"], env={"TOKEN": Secret(VALUE)}, check=True)  # type: ignore[dict-item]


def test_logging_shows_the_mask(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("scratchd.test").info("login %s / %r", Secret(VALUE), Secret(VALUE))
    assert VALUE not in caplog.text and "login *** / Secret('***')" in caplog.text


def test_reveal_equality_and_immutability():
    s = Secret(VALUE)
    assert s.reveal() == VALUE
    assert Secret(s).reveal() == VALUE  # wrapping twice keeps the value, not the mask
    assert s == Secret(VALUE) and hash(s) == hash(Secret(VALUE)) and s != Secret("other")
    assert s != VALUE  # a str is not a secret
    assert bool(s) and not Secret("")
    assert copy.deepcopy({"a": s})["a"] is s
    with pytest.raises(AttributeError):
        s._value = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def _reveal_calls() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if is_call and node.func.attr == "reveal":
                found.setdefault(str(path.relative_to(PACKAGE)), []).append(node.lineno)
    return found


def test_only_points_of_use_reveal_a_secret():
    """Every ``.reveal()`` in the package is in a module that sends the value where it
    is used (auth header, step environment) or masks it; a new one must be added here."""
    calls = _reveal_calls()
    assert calls, "the scan found no reveal() at all: it is looking in the wrong place"
    strays = {module: lines for module, lines in calls.items() if module not in REVEALERS}
    assert not strays, f"reveal() outside the points of use: {strays}"
