"""The daemon's journal fields, read back from a real journald with journalctl.

``BUILD_ID`` means the build's number on every record of a build, whoever
logs it (worker, executor, backend, step output), so ``journalctl
BUILD_ID=42`` is the whole story of build 42; the backend's per-run uuid is
``RUN_ID`` and nothing else.
"""

from __future__ import annotations

import re
import uuid

from tests.git.repos import WorkRepo
from tests.support.daemon import make_daemon_fixture, repo_table  # noqa: F401

RUN_ID_YML = """\
build:
  steps:
    - script:
        name: say run id
        code: echo "run id is $WERCKER_RUN_ID"
"""


def journal_daemon(make_daemon, tmp_path, repos):
    """A daemon whose stderr counts as the journal (as under systemd), logging debug too."""
    d = make_daemon(repos)
    d.global_args = ["-vv"]
    d.output.touch()
    st = d.output.stat()
    d.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    return d.start()


def test_build_id_selects_every_line_of_a_build_backend_lines_included(
    tmp_path, make_daemon, journald
):
    name = f"j{uuid.uuid4().hex[:10]}"
    work = WorkRepo(tmp_path / name)
    work.commit("wercker.yml", files={"wercker.yml": RUN_ID_YML})
    d = journal_daemon(make_daemon, tmp_path, [repo_table(name, work.path)])
    build = d.wait_status(work.head(), "passed")
    ours = (f"REPO={name}", f"_PID={d.proc.pid}")

    def complete(entries):
        messages = [e.get("MESSAGE", "") for e in entries]
        return "host step exited 0" in messages and any("passed" in m for m in messages)

    entries = journald.wait(f"BUILD_ID={build.id}", *ours, until=complete)
    messages = [e["MESSAGE"] for e in entries]
    backend = [e for e in entries if e["MESSAGE"] in ("starting host step", "host step exited 0")]
    assert len(backend) == 2, messages  # the host backend's own lines are found by BUILD_ID
    printed = next(m for m in messages if m.startswith("run id is "))
    run_id = printed.removeprefix("run id is ")
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert {e["RUN_ID"] for e in backend} == {run_id}
    assert all(e["STEP"] == "say run id" and e["PIPELINE"] == "build" for e in backend)

    everything = journald.query(*ours)  # no record of this daemon uses the uuid as BUILD_ID
    assert {e.get("BUILD_ID") for e in everything} <= {str(build.id), None}
    assert {e["RUN_ID"] for e in everything if "RUN_ID" in e} == {run_id}
    assert d.stop() == 0
