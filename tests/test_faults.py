"""The pieces that keep the daemon up on a full disk, each on a real "full" file.

``/dev/full`` answers every write with ENOSPC, exactly what a full file
system does; the daemon end to end on a real 8 MB tmpfs is in
``tests/test_service_disk_full.py``.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from scratchd.errors import StoreError
from scratchd.faults import Condition, Reserve, is_disk_full, low_on_space
from scratchd.models import BuildStatus
from scratchd.store import BuildLog
from tests.test_workers_unit import Rig, result

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


@needs_dev_full
def test_a_log_on_a_full_disk_drops_lines_and_reports_once():
    errors: list[OSError] = []
    log = BuildLog(Path("/dev/full"), on_error=errors.append)
    log.line("one")
    log.line("two")
    log.close()
    assert [e.errno for e in errors] == [errno.ENOSPC]
    assert log.write_error is errors[0]


def test_a_condition_logs_its_start_and_end_once(caplog):
    condition = Condition(logging.getLogger("t"), "disk full", "space is back")
    with caplog.at_level(logging.WARNING, logger="t"):
        assert condition.failed("no space") is True
        assert condition.failed("no space") is False
        assert condition.cleared() is True
        assert condition.cleared() is False
    assert [r.getMessage() for r in caplog.records] == ["disk full: no space", "space is back"]


def test_disk_full_is_told_from_other_errors():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise StoreError("state database: write failed") from exc
    except StoreError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(StoreError("state database x.db: database or disk is full"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not low_on_space(Path("/no/such/dir/at/all"), minimum=0)  # its parents count
    assert low_on_space(Path("/no/such/dir/at/all"), minimum=2**62)


def test_the_reserve_is_written_with_real_blocks_and_given_up(tmp_path):
    reserve = Reserve(tmp_path / ".reserve", size=64 * 1024)
    assert reserve.ensure()
    assert (tmp_path / ".reserve").stat().st_blocks * 512 >= 64 * 1024  # not sparse
    assert reserve.release() is True
    assert reserve.release() is False
    assert not (tmp_path / ".reserve").exists()


def test_an_outcome_the_store_refuses_is_recorded_later_and_frees_the_slot(tmp_path):
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED))
    finish = rig.scheduler.finish
    refusals = [StoreError("state database: database or disk is full")] * 2

    def full_then_fine(build, outcome):
        if refusals:
            raise refusals.pop()
        return finish(build, outcome)

    rig.scheduler.finish = full_then_fine
    reserve = rig.state.root / ".reserve"
    assert reserve.exists()  # written when the pool was made
    assert rig.build() == []  # the worker ended, nothing recorded yet
    assert not reserve.exists()  # given up to make room for the outcome
    assert rig.pool.running() == [] and rig.pool.disk_full.active
    assert rig.pool.record_pending() == 0
    [(build, outcome)] = rig.scheduler.finished
    assert build.id == 1 and outcome.passed
    assert reserve.exists()  # back once nothing is pending


def test_a_build_whose_paths_cannot_be_stored_is_an_infrastructure_error(tmp_path):
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED))

    def full(*args, **kw):
        raise StoreError("state database: database or disk is full")

    rig.store.set_paths = full
    [(build, outcome)] = rig.build()
    assert build.id == 1 and rig.pool.running() == []
    assert outcome.status == BuildStatus.ERROR and outcome.retryable
    assert outcome.message.startswith("no space left on the state directory's disk")
    assert rig.executor.requests == []  # nothing ran
