"""``scratchd demo``: the README quick start in one command.

Creates a sample repository, starts the daemon on it (host executor, state
in a temporary folder), commits, streams the build's log as it runs, and
leaves the baked image in the state dir's OCI layout store. If a Docker
engine answers, the image is also loaded and run. Then it prints where
everything is and how to look at it with skopeo and umoci.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BUILD_TIMEOUT = 300.0  # seconds; the demo build takes about one


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build a sample repository with a throw-away daemon (no registry, no Docker)",
        description="Create a sample repository, run the daemon on it with the host "
        "executor, commit, and show the build and the image it baked.",
    )
    parser.add_argument(
        "--dir", type=Path, help="where to put everything (default: a new temp dir)"
    )
    parser.add_argument(
        "--no-docker", action="store_true", help="do not load and run the image in Docker"
    )
    parser.add_argument(
        "--payload",
        choices=("auto", "cc", "busybox"),
        default="auto",
        help="how the sample program is made: compiled with cc -static, or a copy of the "
        "static busybox (default: cc when it works here)",
    )
    parser.add_argument(
        "--no-web", action="store_true", help="do not start the web page next to the daemon"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from scratchd.demo import choose_payload, no_payload_reason
    from scratchd.errors import UsageError

    root = args.dir or Path(tempfile.mkdtemp(prefix="scratchd-demo-"))
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    payload = choose_payload(args.payload)
    if payload is None:
        raise UsageError(no_payload_reason(args.payload))
    demo = Demo(root)
    say(f"scratchd demo in {root}")
    say(f"payload: {payload.how}")
    demo.prepare(payload)
    with demo.daemon(), demo.web(enabled=not args.no_web):
        sha = demo.commit()
        say(f"committed {sha[:12]} to {demo.repo}; the daemon noticed it through inotify:")
        build = demo.follow(sha)
    say(f"build {build.id} {build.status}" + (f": {build.message}" if build.message else ""))
    if build.status != "passed":
        say(f"daemon log: {demo.daemon_log}")
        return 1
    say(f"image {build.images[0] if build.images else '?'} in {demo.oci} tagged {sha} and latest")
    if not args.no_docker:
        demo.run_in_docker(sha)
    print(demo.guide(sha, build.id))
    return 0


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


class Demo:
    """Paths and steps of one demo run under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = root / "hello"
        self.state = root / "state"
        self.oci = self.state / "oci"
        self.config = root / "scratchd.toml"
        self.daemon_log = root / "daemon.log"

    def prepare(self, payload) -> None:
        from scratchd.demo import create_repository

        if self.repo.exists():
            from scratchd.errors import UsageError

            raise UsageError(f"{self.repo} already exists; pass an empty --dir")
        create_repository(self.repo, payload)
        self.config.write_text(
            "# Made by `scratchd demo`; run the daemon again with:\n"
            f"#   scratchd run --config {self.config}\n"
            "[daemon]\n"
            f'state_dir = "{self.state}"\n'
            'executor = "host"\n'
            "max_concurrent_builds = 1\n"
            'shutdown_grace = "30s"\n\n'
            "[[repo]]\n"
            'name = "hello"\n'
            f'path = "{self.repo}"\n'
            'branches = ["main"]\n'
        )

    def daemon(self):
        """A context manager: ``scratchd run`` in the background, SIGTERM'd at the end."""
        import contextlib
        import subprocess

        @contextlib.contextmanager
        def running():
            with open(self.daemon_log, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "scratchd", "run", "--config", str(self.config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                self._wait_ready(proc)
                say(f"daemon running (pid {proc.pid}), log in {self.daemon_log}")
                yield proc
            finally:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                say(f"daemon stopped (exit status {proc.returncode})")

        return running()

    def web(self, enabled: bool = True):
        """A context manager: ``scratchd web`` on 127.0.0.1:8470 (or a free port) meanwhile."""
        import contextlib
        import subprocess
        import urllib.request

        @contextlib.contextmanager
        def serving():
            if not enabled:
                yield None
                return
            proc: subprocess.Popen[str] | None = None
            url = ""
            for bind in ("127.0.0.1:8470", "127.0.0.1:0"):  # 8470 may be taken: any port
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "scratchd",
                        "web",
                        "--config",
                        str(self.config),
                        "--bind",
                        bind,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                url = proc.stdout.readline().strip() if proc.stdout else ""
                if url:
                    break
                proc.wait()
            try:
                if url:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as r:  # noqa: S310
                        r.read()
                    say(f"web page: {url} (dashboard, this build's live log)")
                else:
                    say("the web page did not start; the demo goes on without it")
                yield url
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)

        return serving()

    def _wait_ready(self, proc) -> None:
        from scratchd.errors import ScratchdError

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ScratchdError(f"the daemon exited; see {self.daemon_log}")
            info = self._store_or_none()
            if info is not None and (d := info.daemon_info()) and d.pid == proc.pid:
                return
            time.sleep(0.05)
        raise ScratchdError(f"the daemon did not start; see {self.daemon_log}")

    def _store_or_none(self):
        from scratchd.errors import StoreError
        from scratchd.store import StateDir, Store

        if not hasattr(self, "_store"):
            try:
                self._store = Store(StateDir(self.state).db, create=False)
            except StoreError:
                return None
        return self._store

    def commit(self) -> str:
        from scratchd.demo import commit_all

        return commit_all(self.repo, "hello: a static program in a FROM-scratch image")

    def follow(self, sha: str):
        """Stream the build's log while it runs; return its final record."""
        from scratchd.errors import ScratchdError
        from scratchd.store import StateDir, follow_log

        store = self._store_or_none()
        deadline = time.monotonic() + BUILD_TIMEOUT
        build = None
        while build is None:
            if time.monotonic() > deadline:
                raise ScratchdError(f"no build of {sha[:12]} appeared; see {self.daemon_log}")
            build = next((b for b in store.list_builds(repo="hello") if b.sha == sha), None)
            time.sleep(0.02)

        def done() -> bool:
            status = store.get(build.id).status
            return status.finished or time.monotonic() > deadline

        path = StateDir(self.state).log_path("hello", build.id)
        for chunk in follow_log(path, done, poll=0.1):
            sys.stdout.write("".join(f"    {line}\n" for line in chunk.splitlines()))
            sys.stdout.flush()
        return store.get(build.id)

    def run_in_docker(self, sha: str) -> None:
        """Load the image from the OCI store into Docker, run it, remove it again."""
        try:
            import docker

            client = docker.from_env(timeout=30)
            client.ping()
        except Exception as exc:  # no engine (or no access): the demo is complete without
            say(f"no Docker engine reachable ({type(exc).__name__}); skipping docker run")
            return
        from scratchd.image.docker_archive import write_docker_archive
        from scratchd.image.oci_layout import read_oci_layout

        tag = f"scratchd-demo/hello:{sha[:12]}"
        archive = self.root / "hello-image.tar"
        write_docker_archive(read_oci_layout(self.oci, sha), archive, [tag])
        with open(archive, "rb") as f:
            client.images.load(f.read())
        say(f"loaded into Docker as {tag}; docker run --rm {tag}:")
        try:
            out = client.containers.run(tag, remove=True)
            sys.stdout.write("".join(f"    {line}\n" for line in out.decode().splitlines()))
        finally:
            import contextlib

            import docker.errors

            # Another demo of the same commit (same sha, same tag) may have removed it.
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
            say(f"removed {tag} from Docker again (the archive stays: {archive})")
        client.close()

    def guide(self, sha: str, build_id: int) -> str:
        return f"""
Everything is in {self.root}:
  repository   {self.repo}        (commit there; a running daemon builds it)
  config       {self.config}
  state        {self.state}/scratchd.db, logs/, work/, cache/, mirrors/
  images       {self.oci}        (OCI layout, tags: {sha}, latest)

Look around:
  scratchd builds --config {self.config}
  scratchd logs --config {self.config} {build_id}
  skopeo inspect oci:{self.oci}:latest
  umoci ls --layout {self.oci}
  umoci unpack --rootless --image {self.oci}:latest {self.root}/bundle
  skopeo copy oci:{self.oci}:latest docker-daemon:scratchd-demo/hello:latest

Run the daemon again and keep committing, and watch it on the web page:
  scratchd run --config {self.config}
  scratchd web --config {self.config}     (http://127.0.0.1:8470)
"""
