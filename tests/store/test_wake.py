"""The doorbell: commands wake the daemon through a FIFO in the state directory."""

from __future__ import annotations

import stat
import threading

from scratchd.store.wake import FIFO_NAME, Doorbell, ring


def test_ring_without_a_daemon_is_a_quiet_no(tmp_path):
    assert ring(tmp_path) is False  # never ran here: no FIFO
    bell = Doorbell(tmp_path, lambda: None)
    assert bell.start()
    bell.stop()
    assert ring(tmp_path) is False  # a FIFO nobody reads: ENXIO, not a hang


def test_each_ring_wakes_the_listener(tmp_path):
    woken = threading.Semaphore(0)
    bell = Doorbell(tmp_path, woken.release)
    assert bell.start()
    try:
        for _ in range(3):
            assert ring(tmp_path)
            assert woken.acquire(timeout=5)
    finally:
        bell.stop()
    assert stat.S_ISFIFO((tmp_path / FIFO_NAME).lstat().st_mode)


def test_a_stray_file_in_its_place_is_replaced(tmp_path):
    (tmp_path / FIFO_NAME).write_text("not a fifo")
    woken = threading.Event()
    bell = Doorbell(tmp_path, woken.set)
    assert bell.start()
    try:
        assert ring(tmp_path) and woken.wait(5)
    finally:
        bell.stop()
