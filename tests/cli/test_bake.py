"""``scratchd bake`` as a user runs it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scratchd.image.build import bake
from scratchd.image.oci_layout import read_oci_layout
from scratchd.models import ImageSpec, Platform
from tests.image.kit import make_tree

HEAVY_MODULES = ("docker", "requests", "pygit2", "yaml")


def scratchd(*args: str, env: dict | None = None, prefix: tuple[str, ...] = ()):
    full_env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    full_env.update(env or {})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "scratchd", "bake", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("scratchd: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def tree(tmp_path) -> Path:
    return make_tree(
        tmp_path / "out", {"app": "#!/bin/sh\n", "static/i.html": "<p>"}, {"app": 0o755}
    )


def test_prints_the_digest_the_library_computes(tree, tmp_path):
    result = scratchd(str(tree), "--cmd", "./app --port 5000", "--oci-layout", str(tmp_path / "L"))
    assert result.returncode == 0, result.stderr
    spec = ImageSpec(
        cmd=("./app", "--port", "5000"),
        oci=True,
        platform=Platform("linux", *_host_arch()),
    )
    assert result.stdout == bake(tree, spec, tmp_path / "blobs").digest + "\n"
    assert read_oci_layout(tmp_path / "L", "latest").digest == result.stdout.strip()


def _host_arch() -> tuple[str, str]:
    from scratchd.image.options import host_platform

    host = host_platform()
    return host.architecture, host.variant


def test_json_summary(tree, tmp_path):
    result = scratchd(str(tree), "--tag", "Bad:Tag", "--docker-archive", str(tmp_path / "a.tar"))
    assert_one_line_error(result, "--tag", "'Bad:Tag'", "docker reference")
    assert result.returncode == 2
    result = scratchd(
        str(tree),
        "--cmd",
        '["/app", "a b"]',
        "--port",
        "5000, 8080/udp",
        "--tag",
        "app:v1 app:v2",
        "--docker-archive",
        str(tmp_path / "a.tar"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert out["tags"] == ["app:v1", "app:v2"]
    assert out["digest"].startswith("sha256:") and out["size"] > 0
    assert out["config"]["digest"].startswith("sha256:")
    assert out["layers"][0]["mediaType"].endswith("tar.gzip")
    assert (tmp_path / "a.tar").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_created_defaults_to_source_date_epoch_then_zero(tree, tmp_path):
    def created(*extra, env=None):
        result = scratchd(str(tree), "--oci-layout", str(tmp_path / "L"), "--json", *extra, env=env)
        assert result.returncode == 0, result.stderr
        image = read_oci_layout(tmp_path / "L", "latest")
        return json.loads(image.config.data)["created"]

    assert created() == "1970-01-01T00:00:00Z"
    assert created(env={"SOURCE_DATE_EPOCH": "1700000000"}) == "2023-11-14T22:13:20Z"
    assert created("--created", "2024-01-02T03:04:05Z") == "2024-01-02T03:04:05Z"


def test_zstd_oci(tree, tmp_path):
    result = scratchd(
        str(tree), "--compression", "zstd", "--oci-layout", str(tmp_path / "L"), "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"][0]["mediaType"].endswith("tar+zstd")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--env", "NOEQUALS"], ["--env", "'NOEQUALS' is not KEY=VALUE"]),
        (["--platform", "linux/amd65"], ["--platform", "amd65"]),
        (["--format", "docker", "--compression", "zstd"], ["zstd", "--format oci"]),
        (["--created", "last tuesday"], ["--created", "last tuesday"]),
        (["--port", "99999"], ["--port", "99999"]),
        (["--cmd", "echo 'unclosed"], ["--cmd"]),
        (["--workdir", "relative"], ["--workdir", "absolute"]),
    ],
)
def test_bad_options(tree, tmp_path, args, needles):
    result = scratchd(str(tree), *args, "--oci-layout", str(tmp_path / "L"))
    assert_one_line_error(result, *needles)
    assert result.returncode == 2
    assert not (tmp_path / "L" / "index.json").exists()


def test_bad_source_date_epoch(tree, tmp_path):
    result = scratchd(
        str(tree), "--oci-layout", str(tmp_path / "L"), env={"SOURCE_DATE_EPOCH": "x"}
    )
    assert_one_line_error(result, "SOURCE_DATE_EPOCH")


def test_dir_missing_or_not_a_directory(tmp_path):
    missing = tmp_path / "missing"
    assert_one_line_error(scratchd(str(missing), "--oci-layout", str(tmp_path / "L")), str(missing))
    afile = tmp_path / "file"
    afile.write_text("x")
    result = scratchd(str(afile), "--oci-layout", str(tmp_path / "L"))
    assert_one_line_error(result, str(afile), "not a directory")


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    else:
        try:
            os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))
        except PermissionError:
            pytest.skip("creating device nodes needs CAP_MKNOD")


@pytest.mark.parametrize(
    ("kind", "what"), [("fifo", "a FIFO"), ("socket", "a socket"), ("device", "a block device")]
)
def test_special_files_are_refused_naming_the_path(tmp_path, kind, what):
    root = make_tree(tmp_path / "o", {"sub/ok": "fine"})
    _special(kind, root / "sub" / "special")
    result = scratchd(str(root), "--oci-layout", str(tmp_path / "L"))
    assert_one_line_error(result, f"{root}/sub/special: is {what}")
    assert result.returncode == 1


def test_unreadable_file_is_refused_naming_the_path(tmp_path):
    root = make_tree(tmp_path / "o", {"a": "ok", "secret.key": "nope"})
    (root / "secret.key").chmod(0)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # root reads mode-0 files; drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux)")
        caps = "-dac_override,-dac_read_search"
        prefix = (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")
    result = scratchd(str(root), "--oci-layout", str(tmp_path / "L"), prefix=prefix)
    assert_one_line_error(result, f"{root}/secret.key", "unreadable")
    blobs = tmp_path / "L" / "blobs" / "sha256"
    assert not blobs.exists() or list(blobs.iterdir()) == []  # no half-written layer


def test_non_utf8_name_is_stored(tmp_path):
    root = make_tree(tmp_path / "o", {})
    with open(os.fsencode(root) + b"/caf\xe9", "wb") as f:
        f.write(b"x")
    result = scratchd(str(root), "--oci-layout", str(tmp_path / "L"))
    assert result.returncode == 0, result.stderr


def test_empty_dir_is_a_valid_image(tmp_path):
    root = make_tree(tmp_path / "empty", {})
    result = scratchd(str(root), "--oci-layout", str(tmp_path / "L"), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["layers"]) == 1


def test_bake_does_not_import_heavy_modules(tree, tmp_path):
    """Every command module is imported to build the parser; none may pull these in."""
    code = (
        "import sys\n"
        "from scratchd.cli import main\n"
        f"rc = main(['bake', {str(tree)!r}, '--oci-layout', {str(tmp_path / 'L')!r}])\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_quick_start_example_bakes_and_skopeo_reads_it(tmp_path):
    """The README quick start: the example directory shipped in config/."""
    from tests.image.kit import tool

    example = Path(__file__).resolve().parents[2] / "config" / "example-rootfs"
    layout = tmp_path / "example-layout"
    result = scratchd(str(example), "--oci-layout", str(layout), "--tag", "v1")
    assert result.returncode == 0, result.stderr
    info = subprocess.run(
        [tool("skopeo"), "inspect", f"oci:{layout}:v1"], capture_output=True, text=True, check=True
    )
    assert json.loads(info.stdout)["Digest"] == result.stdout.strip()
