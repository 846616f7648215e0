"""Baking streams: a 1 GB directory bakes with a peak RSS far below its size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

RSS_LIMIT_KB = 100 * 1024

# Runs the real CLI in a fresh interpreter and reports that process's own peak RSS.
# Not getrusage's ru_maxrss: Linux carries the high-water mark of the address space
# a process had before exec into it, and subprocess starts children with vfork, so
# that is the pytest process's own peak (over 100 MB late in a full run). VmHWM is
# the peak of the address space exec created: the bake's alone.
_CHILD = """
import json, sys
from scratchd.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rc": rc, "peak_rss_kb": hwm}))
"""


def test_one_gigabyte_bakes_under_100_mb_rss(tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    with open(root / "sparse.bin", "wb") as f:
        f.truncate(1 << 30)  # sparse: written instantly, still 1 GiB of bytes to read
    (root / "small.txt").write_text("next to a big file\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            "bake",
            str(root),
            "--oci-layout",
            str(tmp_path / "layout"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    child = json.loads(lines[-1])
    summary = json.loads("\n".join(lines[:-1]))
    assert child["rc"] == 0
    assert child["peak_rss_kb"] < RSS_LIMIT_KB, f"peak RSS {child['peak_rss_kb']} kB"
    layer = summary["layers"][0]
    blob = tmp_path / "layout" / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
    assert os.path.getsize(blob) == layer["size"]
    assert layer["size"] < 8 << 20  # zeros compress: proof the whole GiB went through gzip
