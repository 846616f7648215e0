"""The attach framing on its own: frames split anywhere, a tar then a status line.

The real engine is in ``tests/engines``; here a socket made of bytes lets the
edge cases (a frame boundary inside the tar's end, padding, stderr, a cut
connection) be chosen exactly.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from scratchd.errors import BackendError
from scratchd.runner.attach import STDERR, STDOUT, Attached
from scratchd.runner.remote_engine import _extract


class BytesSocket:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def recv(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + min(size, 7000)]  # short reads, as TLS gives
        self.at += len(chunk)
        return chunk

    def settimeout(self, _seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class Api:
    def __init__(self, data: bytes) -> None:
        self.sock = BytesSocket(data)

    def attach_socket(self, _container, params):
        assert params == {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        return self.sock


def frames(*parts: tuple[int, bytes], size: int = 5000) -> bytes:
    out = b""
    for stream, data in parts:
        for i in range(0, len(data), size):
            chunk = data[i : i + size]
            out += bytes([stream, 0, 0, 0]) + len(chunk).to_bytes(4, "big") + chunk
    return out


def output_tar(padding: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("output", "report"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = bytes(range(256)) * 300
        info = tarfile.TarInfo("output/app")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue() + b"\0" * padding


@pytest.mark.parametrize("padding", [0, 9000])
def test_the_status_line_after_the_tar_is_read_without_waiting_for_the_end(tmp_path, padding):
    data = frames(
        (STDOUT, output_tar(padding) + b"scratchd:collected 0\n"),
        (STDERR, b"tar: a warning\n"),
        (STDOUT, b"never read: the container may keep its stream open"),
    )
    channel = Attached(Api(data), "c", 5)
    stdout = channel.stdout()
    targets = {"output": tmp_path / "o", "report": tmp_path / "r"}
    stdout.unread(_extract(stdout, targets))
    assert channel.marker() == "collected 0"
    assert (tmp_path / "o" / "app").read_bytes() == bytes(range(256)) * 300


def test_lines_before_a_marker_are_kept_and_an_early_end_is_an_engine_error():
    data = frames((STDOUT, b"tar: short read\nscratchd:failed\nhalf a line"))
    channel = Attached(Api(data), "c", 5)
    assert channel.marker() == "failed" and channel.said == ["tar: short read"]
    with pytest.raises(BackendError, match="ended before it was ready"):
        channel.marker()


def test_a_broken_tar_is_an_engine_error(tmp_path):
    channel = Attached(Api(frames((STDOUT, b"x" * 2048))), "c", 5)
    with pytest.raises(BackendError, match="broken tar"):
        _extract(channel.stdout(), {"output": tmp_path / "o"})
