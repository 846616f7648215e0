"""Baking streams: a 1 GB directory bakes with a peak RSS far below its size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

RSS_LIMIT_KB = 100 * 1024

# Runs the real CLI in a fresh interpreter and reports that process's own peak RSS,
# so nothing the test process allocated earlier is counted.
_CHILD = """
import json, resource, sys
from scratchd.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
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
    assert child["maxrss_kb"] < RSS_LIMIT_KB, f"peak RSS {child['maxrss_kb']} kB"
    layer = summary["layers"][0]
    blob = tmp_path / "layout" / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
    assert os.path.getsize(blob) == layer["size"]
    assert layer["size"] < 8 << 20  # zeros compress: proof the whole GiB went through gzip
