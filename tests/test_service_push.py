"""The daemon's pushes share one registry client: what one build pushed, the next mounts.

Two repositories bake the same layer (same file, same commit time, so the
same mtimes) and push it to two repositories of one registry, one build
after the other. The second push finds the layer through the blob memory
the first push left in the daemon's long-lived client and mounts it across
repositories instead of uploading it again.
"""

from __future__ import annotations

import re

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401

PUSHED = re.compile(
    r"pushed (\S+)@sha256:\w+ as \S+ \((\d+) bytes uploaded, (\d+) skipped, (\d+) mounted\)"
)


def test_second_repository_mounts_the_layer_the_first_build_pushed(
    tmp_path, make_daemon, registry, monkeypatch
):
    # One commit time for both repositories: the layers' mtimes, hence digests, agree.
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
    tables = []
    for name in ("first", "second"):
        yml = QUICK_YML.replace("cat counter.txt", 'cp counter.txt "$WERCKER_OUTPUT_DIR/"') + (
            "deploy:\n  steps:\n    - internal/docker-scratch-push:\n"
            f"        repository: {registry.host}/shared/{name}\n        cmd: /counter.txt\n"
        )
        work = WorkRepo(tmp_path / name)
        work.commit(files={"wercker.yml": yml, "counter.txt": "the same layer\n"})
        tables.append((work, repo_table(name, work.path, pipelines=["build", "deploy"])))
    d = make_daemon(
        [t for _, t in tables],
        registries={registry.host: {"insecure": True}},
        max_concurrent_builds=1,  # one push after the other
    ).start()
    for work, _ in tables:
        d.wait_status(work.head(), "passed")
    pushes = [m.groups() for m in PUSHED.finditer(d.log())]
    assert len(pushes) == 2, d.log()[-3000:]
    (_, first_bytes, _, first_mounted), (_, _, _, second_mounted) = pushes
    assert int(first_bytes) > 0 and first_mounted == "0"
    assert int(second_mounted) >= 1, pushes  # the layer (at least) came by mount
    # The daemon recorded both pushes as the log says (``/metrics`` reads these rows).
    rows = d.store().db.read(
        "SELECT repository, uploaded_bytes, mounted_blobs FROM pushes ORDER BY rowid"
    )
    assert [tuple(r) for r in rows] == [
        ("shared/first", int(first_bytes), 0),
        ("shared/second", int(pushes[1][1]), int(second_mounted)),
    ]
    assert d.stop() == 0
