"""The daemon applies the config's bake caps to every internal/docker-scratch-push."""

from __future__ import annotations

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401


def _project(path, size: int) -> WorkRepo:
    yml = (
        QUICK_YML.replace(
            "cat counter.txt", f'head -c {size} /dev/zero > "$WERCKER_OUTPUT_DIR/blob"'
        )
        + "deploy:\n  steps:\n    - internal/docker-scratch-push:\n        cmd: /blob\n"
    )
    work = WorkRepo(path)
    work.commit(files={"wercker.yml": yml})
    return work


def test_bake_max_file_size_fails_the_build_with_a_clear_message(tmp_path, make_daemon):
    big, small = _project(tmp_path / "big", 4096), _project(tmp_path / "small", 1024)
    d = make_daemon(
        [
            repo_table("big", big.path, pipelines=["build", "deploy"]),
            repo_table("small", small.path, pipelines=["build", "deploy"]),
        ],
        bake_max_file_size="1KiB",
    ).start()

    failed = d.wait_status(big.head(), "failed")
    assert "4096 bytes, larger than the 1024-byte limit" in failed.message
    assert "bake_max_file_size" in failed.message
    d.wait_status(small.head(), "passed")
    assert d.stop() == 0
