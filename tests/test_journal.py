"""The journal handler against a real systemd-journald, read back with journalctl."""

from __future__ import annotations

import io
import logging
import os
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scratchd.journal import (
    MAX_LINE,
    NOTICE,
    ConsoleHandler,
    JournalHandler,
    JournalSocket,
    install_handler,
    installed_redactor,
    output_consumer,
    priority,
    step_output_sink,
    use_journal,
)
from scratchd.journal.native import encode, stderr_is_journal
from scratchd.redact import Redactor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def build_id() -> str:
    """A value no other entry in the shared journal carries."""
    return f"t-{uuid.uuid4().hex}"


@pytest.fixture
def logger(journald):
    """A logger with only a JournalHandler on it (not the root logger)."""
    log = logging.getLogger(f"scratchd.test.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = JournalHandler(Redactor(), JournalSocket(journald.socket))
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


# -- wire format -------------------------------------------------------------


def test_encode_plain_and_length_prefixed_fields():
    data = encode([("MESSAGE", "hi"), ("TEXT", "a\nb"), ("N", 3)])
    assert data == b"MESSAGE=hi\nTEXT\n" + struct.pack("<Q", 3) + b"a\nb\nN=3\n"


def test_encode_keeps_raw_bytes_of_surrogate_escaped_output():
    raw = b"\xff\xfe\x00ok"
    assert (
        encode([("MESSAGE", raw.decode("utf-8", "surrogateescape"))]) == b"MESSAGE=" + raw + b"\n"
    )


@pytest.mark.parametrize("name", ["lower", "_TRUSTED", "1ST", "A" * 65, "WITH-DASH"])
def test_encode_refuses_names_journald_would_drop(name):
    with pytest.raises(ValueError, match="invalid journal field name"):
        encode([(name, "x")])


def test_priority_of_levels():
    levels = [logging.CRITICAL, logging.ERROR, logging.WARNING, NOTICE, logging.INFO]
    assert [priority(n) for n in levels] == [2, 3, 4, 5, 6]
    assert priority(logging.DEBUG) == 7


# -- real journald -------------------------------------------------------------


def test_build_fields_are_filterable_with_journalctl(journald, logger, build_id):
    fields = {
        "REPO": "cities",
        "BRANCH": "main",
        "COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "BUILD_ID": build_id,
        "PIPELINE": "deploy",
        "STEP": "internal/docker-scratch-push",
        "IMAGE_DIGEST": "sha256:" + "ab" * 32,
    }
    logger.info("pushed %s", "quay.io/org/cities", extra=fields)
    logger.info("unrelated", extra={**fields, "REPO": "other"})
    (entry,) = journald.wait("REPO=cities", f"BUILD_ID={build_id}")
    assert {k: entry[k] for k in fields} == fields
    assert entry["MESSAGE"] == "pushed quay.io/org/cities"
    assert entry["PRIORITY"] == "6"
    assert entry["SYSLOG_IDENTIFIER"] == "scratchd"
    assert entry["CODE_FILE"] == __file__
    assert entry["CODE_FUNC"] == "test_build_fields_are_filterable_with_journalctl"
    assert int(entry["CODE_LINE"]) > 0


def test_priority_filter_shows_only_failures(journald, logger, build_id):
    extra = {"BUILD_ID": build_id}
    logger.info("step passed", extra=extra)
    logger.warning("retrying push", extra=extra)
    logger.error("step failed", extra=extra)
    journald.wait(f"BUILD_ID={build_id}", until=lambda e: len(e) == 3)
    failures = journald.query(f"BUILD_ID={build_id}", extra_args=("-p", "err"))
    assert [e["MESSAGE"] for e in failures] == ["step failed"]


def test_step_output_priorities(journald, logger, build_id):
    sink = step_output_sink({"REPO": "cities", "BUILD_ID": build_id, "STEP": "go"}, logger=logger)
    sink("stdout", "compiling")
    sink("stderr", "warning: unused")
    entries = journald.wait(f"BUILD_ID={build_id}", until=lambda e: len(e) == 2)
    got = {e["STREAM"]: (e["PRIORITY"], e["MESSAGE"], e["STEP"]) for e in entries}
    assert got == {"stdout": ("6", "compiling", "go"), "stderr": ("5", "warning: unused", "go")}


def test_secrets_never_reach_the_journal(journald, logger, build_id):
    process_secret, build_secret = f"proc-{uuid.uuid4().hex}", f"build-{uuid.uuid4().hex}"
    logger.handlers[0].redactor.add(process_secret)
    per_build = Redactor([build_secret])
    extra = {"BUILD_ID": build_id, "redactor": per_build}
    logger.info("login with %s", process_secret, extra=extra)
    logger.info("token", extra={**extra, "STEP": f"echo {build_secret}"})
    sink = step_output_sink({"BUILD_ID": build_id}, redactor=per_build, logger=logger)
    sink("stdout", f"export TOKEN={build_secret}")
    try:
        raise RuntimeError(f"auth failed for {process_secret}")
    except RuntimeError:
        logger.exception("push failed", extra=extra)
    journald.wait(f"BUILD_ID={build_id}", until=lambda e: len(e) == 4)
    raw = subprocess.run(
        ["journalctl", "--no-pager", "--all", "-o", "json", f"BUILD_ID={build_id}"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "***" in raw and "auth failed for ***" in raw
    assert process_secret not in raw and build_secret not in raw


def test_long_message_goes_whole_through_a_memfd(journald, logger, build_id):
    # Larger than any datagram the kernel allows (net.core.wmem_max), so this
    # takes the protocol's sealed-memfd path.
    text = "x" * (4 * 1024 * 1024)
    logger.info(text, extra={"BUILD_ID": build_id})
    (entry,) = journald.wait(f"BUILD_ID={build_id}")
    assert entry["MESSAGE"] == text


def test_step_sink_splits_long_lines(journald, logger, build_id):
    line = "".join(chr(ord("a") + i % 26) for i in range(2 * MAX_LINE + 10))
    step_output_sink({"BUILD_ID": build_id}, logger=logger)("stdout", line)
    entries = journald.wait(f"BUILD_ID={build_id}", until=lambda e: len(e) == 3)
    assert [len(e["MESSAGE"]) for e in entries] == [MAX_LINE, MAX_LINE, 10]
    assert "".join(e["MESSAGE"] for e in entries) == line


def test_binary_output_arrives_byte_exact(journald, logger, build_id):
    raw = b"\x1b[31mred\x1b[0m \xff\xfe\x00 end"
    step_output_sink({"BUILD_ID": build_id}, logger=logger)(
        "stderr", raw.decode("utf-8", "surrogateescape")
    )
    (entry,) = journald.wait(f"BUILD_ID={build_id}")
    assert bytes(entry["MESSAGE"]) == raw  # journalctl -o json gives non-UTF-8 as byte arrays


def test_unreachable_journal_falls_back_to_the_console(tmp_path):
    stream = io.StringIO()
    handler = JournalHandler(
        Redactor(["s3cr3t"]),
        JournalSocket(str(tmp_path / "no-journald")),
        fallback=ConsoleHandler(Redactor(["s3cr3t"]), stream),
    )
    log = logging.getLogger("scratchd.test.fallback")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.error("push failed: s3cr3t", extra={"REPO": "cities"})
    finally:
        log.removeHandler(handler)
    assert "ERROR   [cities] push failed: ***" in stream.getvalue()


# -- choosing the destination -------------------------------------------------------


def test_journal_stream_must_match_stderr(tmp_path):
    with open(tmp_path / "stderr", "w") as f:
        st = os.fstat(f.fileno())
        same = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        other = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}
        assert stderr_is_journal(same, f.fileno())
        assert not stderr_is_journal(other, f.fileno())
        assert not stderr_is_journal({}, f.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, f.fileno())


def test_prefer_journal_forces_either_way():
    assert use_journal(True, socket_path="/nonexistent")
    assert not use_journal(False)


def test_cli_logs_to_the_journal_when_stderr_is_the_journal(journald, tmp_path, build_id):
    """The real process path: JOURNAL_STREAM names our stderr, so records go native."""
    code = (
        "import logging; from scratchd.cli import _configure_logging; _configure_logging(1, None);"
        f"logging.getLogger('scratchd.x').warning('hello', extra={{'BUILD_ID': '{build_id}'}})"
    )
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as stderr:
        st = os.fstat(stderr.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        env["PYTHONPATH"] = str(ROOT / "daemon")
        subprocess.run([sys.executable, "-c", code], stderr=stderr, env=env, check=True)
    (entry,) = journald.wait(f"BUILD_ID={build_id}")
    assert entry["MESSAGE"] == "hello" and entry["PRIORITY"] == "4"
    assert stderr_path.read_text() == ""


def test_cli_logs_readable_lines_without_a_journal(tmp_path):
    code = (
        "import logging; from scratchd.cli import _configure_logging; _configure_logging(1, None);"
        "logging.getLogger('scratchd.x').info('built', extra={'REPO': 'cities', 'BUILD_ID': 42,"
        " 'PIPELINE': 'build', 'STEP': 'compile'})"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT / "daemon")
    err = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stderr
    assert err.endswith(" INFO    [cities#42 build/compile] built\n")
    assert err[:4].isdigit() and err[4] == "-"  # starts with a timestamp


def test_install_handler_replaces_and_exposes_its_redactor(restore_root_logging):
    stream = io.StringIO()
    first = install_handler(logging.INFO, prefer_journal=False, stream=io.StringIO())
    mine = Redactor()
    second = install_handler(logging.INFO, prefer_journal=False, redactor=mine, stream=stream)
    root = logging.getLogger()
    assert first not in root.handlers and second in root.handlers
    assert installed_redactor() is mine
    mine.add("registered-later")
    logging.getLogger("scratchd.x").info("password registered-later")
    assert "password ***" in stream.getvalue()
    assert "registered-later" not in stream.getvalue()


def test_console_escapes_binary(restore_root_logging):
    stream = io.StringIO()
    install_handler(logging.INFO, prefer_journal=False, stream=stream)
    step_output_sink({"REPO": "r"})("stdout", b"\xffbin".decode("utf-8", "surrogateescape"))
    assert stream.getvalue().endswith("INFO    [r] \\udcffbin\n")


def test_executor_output_lines_become_step_entries(journald, logger, build_id):
    from scratchd.runner.sink import BuildOutput

    secret = f"pw-{uuid.uuid4().hex}"
    consumer = output_consumer({"REPO": "cities", "COMMIT": "abc123"}, logger=logger)
    output = BuildOutput(build_id, Redactor([secret]), [consumer])
    output.for_step("build", "go test")("stderr", f"FAIL with {secret}")
    output.emit("build", "go test", "info", "step failed")
    entries = journald.wait(f"BUILD_ID={build_id}", "STEP=go test", until=lambda e: len(e) == 2)
    got = [(e["PIPELINE"], e["STREAM"], e["PRIORITY"], e["MESSAGE"]) for e in entries]
    assert got == [
        ("build", "stderr", "5", "FAIL with ***"),
        ("build", "info", "6", "step failed"),
    ]
    assert entries[0]["REPO"] == "cities" and entries[0]["COMMIT"] == "abc123"


def test_a_broken_log_call_never_raises(journald, logger, build_id, capsys):
    # Records go straight to our handler: newer pytest versions hook their own
    # capture handler into every logger, and that one re-raises format errors.
    (handler,) = (h for h in logger.handlers if isinstance(h, JournalHandler))
    for msg, args in (("%d builds", ("not a number",)), ("still logging", ())):
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, msg, args, None, extra={"BUILD_ID": build_id}
        )
        handler.handle(record)
    (entry,) = journald.wait(f"BUILD_ID={build_id}")
    assert entry["MESSAGE"] == "still logging"
    assert "Logging error" in capsys.readouterr().err


def test_daemon_and_build_maskers_reach_the_journal(journald, build_id):
    from scratchd.models import Secret

    daemon = Redactor([Secret("registry-pw-line1\nregistry-pw-line2")])
    handler = JournalHandler(daemon, JournalSocket(journald.socket))
    log = logging.getLogger(f"scratchd.test.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    build = Redactor([Secret("repo-token-xyz")], parents=(daemon,))
    consume = output_consumer({"REPO": "app"}, redactor=build, logger=log)
    line = type("Line", (), {"build_id": build_id, "pipeline": "build", "step": "cat"})
    for text in ("registry-pw-line1", "registry-pw-line2", "token repo-token-xyz"):
        consume(type("L", (line,), {"stream": "stdout", "text": text})())
    log.error("push failed: registry-pw-line1", extra={"BUILD_ID": build_id})  # daemon record
    entries = journald.wait(f"BUILD_ID={build_id}", until=lambda e: len(e) == 4)
    handler.close()
    messages = [e["MESSAGE"] for e in entries]
    assert messages == ["***", "***", "token ***", "push failed: ***"]
