"""Registry passwords the daemon can read never reach a build's records, nor the daemon's.

A real ``scratchd run`` with a ``password_file`` registry and a host step
that prints that file: the build log, the daemon's stderr, the build's
message and the raw SQLite files are searched for every line of it.
"""

from __future__ import annotations

import gzip

from tests.support.daemon import make_daemon_fixture, repo_table  # noqa: F401
from tests.test_service import project

FIRST, SECOND = "pw-line-one-7f3a", "pw-line-two-9c1e"
CAT_YML = """box: busybox
build:
  steps:
    - script:
        name: cat the password
        code: |
          cat {path}
          echo "failing with $(head -n1 {path})" >&2
          exit 3
"""


def test_registry_password_file_is_masked_in_every_record(tmp_path, make_daemon):
    password = tmp_path / "registry.pw"
    password.write_text(f"{FIRST}\n{SECOND}\n")  # a multi-line secret: masked line by line
    password.chmod(0o600)
    work = project(tmp_path / "cat", CAT_YML.format(path=password))
    registries = {"registry.example:5000": {"username": "ci", "password_file": str(password)}}
    d = make_daemon([repo_table("cat", work.path)], registries=registries)
    d.start()
    build = d.wait_status(work.head(), "failed")
    assert d.stop() == 0

    with gzip.open(d.state.log_path("cat", build.id).with_suffix(".log.gz"), "rt") as f:
        build_log = f.read()
    assert build_log.count("stdout build/cat the password: ***\n") == 2, build_log
    assert "failing with ***" in build_log
    records = {"build log": build_log, "daemon log": d.log(), "message": build.message or ""}
    for db_file in d.state.db.parent.glob(d.state.db.name + "*"):
        records[db_file.name] = db_file.read_bytes().decode("utf-8", "replace")
    for name, text in records.items():
        assert FIRST not in text and SECOND not in text, name
