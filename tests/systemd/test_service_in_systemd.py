"""scratchd as a real systemd service, in a booted Debian 12, end to end.

The shipped unit and sysusers file, the project installed from wheels, a
registry with a password on the host's loopback (the container shares the
host network) whose password reaches the daemon only as a systemd
credential, and a repository inside the container owned by another user.
Each test builds on the previous one's state, like an admin's session:
enable, commit, reload, crash, stop.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.support.services import run_registry, unavailable

pytestmark = pytest.mark.system

PASSWORD = f"cred-{uuid.uuid4().hex}"
USER = "ci"
ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",  # attested pushes are an index
    ]
)

WERCKER_YML = """\
build:
  steps:
    - script:
        name: assemble
        code: |
          echo "building $WERCKER_GIT_COMMIT"
          echo "note on stderr" >&2
          if [ -f fail ]; then echo "broken on purpose" >&2; exit 3; fi
          if [ -f slow ]; then echo "slow build started"; sleep 12; fi
          if [ -f raise ]; then
            renice -n 0 -p $$ || true
            chrt --other -p 0 $$ || true
            chrt --fifo -p 1 $$ || true
            n=$(cut -d" " -f19 /proc/$$/stat)
            p=$(cut -d" " -f41 /proc/$$/stat)
            echo "after: nice=$n policy=$p"
          fi
          cp message.txt "$WERCKER_OUTPUT_DIR/message.txt"
deploy:
  steps:
    - internal/docker-scratch-push:
        repository: {registry}/scratchd-test/{name}
        tag: $WERCKER_GIT_COMMIT
        cmd: /message.txt
"""

CONFIG = """\
[daemon]
executor = "host"
poll_interval = "5s"
shutdown_grace = "10s"
retry_delay = "2s"
build_nice = 7
build_sched_idle = true

[registry."{registry}"]
username = "{user}"
password_credential = "registry-password"
insecure = true
"""

REPO_BLOCK = """
[[repo]]
name = "{name}"
path = "/srv/git/{name}"
branches = ["main"]
"""

DROP_IN = """\
[Service]
LoadCredential=registry-password:/etc/scratchd/registry.password
"""


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    if shutil.which("htpasswd") is None:
        unavailable("htpasswd is not installed (apt-get install apache2-utils)")
    root = tmp_path_factory.mktemp("service-registry")
    line = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(line)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd-systemd\n    path: {root / 'htpasswd'}\n"
    with run_registry(root / "registry", auth=auth) as reg:
        yield reg


@pytest.fixture(scope="module")
def service(systemd_box, auth_registry):
    """scratchd enabled and started, watching /srv/git/cities."""
    box = systemd_box
    box.sh("useradd --create-home dev && install -d -o dev -m 0755 /srv/git")
    make_repo(box, "cities", auth_registry.host)
    box.write(
        "/etc/scratchd/scratchd.toml",
        CONFIG.format(registry=auth_registry.host, user=USER) + REPO_BLOCK.format(name="cities"),
    )
    box.write("/etc/scratchd/registry.password", PASSWORD, mode="0600")
    box.write("/etc/systemd/system/scratchd.service.d/credential.conf", DROP_IN)
    box.sh("systemctl daemon-reload && systemctl enable --now scratchd")
    return box


def make_repo(box, name: str, registry: str) -> None:
    """A non-bare repository with a wercker.yml, owned by ``dev``, not by scratchd.

    No ``safe.directory`` entry: the service must read other users'
    repositories as they are.
    """
    path = f"/srv/git/{name}"
    box.sh(f"install -d -o dev {path}")
    box.write(f"{path}/wercker.yml", WERCKER_YML.format(registry=registry, name=name))
    box.write(f"{path}/message.txt", f"hello from {name}\n")
    as_dev(box, f"cd {path} && git init -q -b main && git add -A && git commit -q -m first")


def as_dev(box, command: str):
    setup = "git config --global user.email dev@example.org; git config --global user.name dev"
    return box.sh(f"chown -R dev /srv/git && su dev -c {shlex.quote(setup + '; ' + command)}")


def commit(box, name: str, message: str, *, marker: str = "") -> str:
    """Commit a change; ``marker`` ("slow", "fail", "raise") is a file the build step reacts to."""
    path = f"/srv/git/{name}"
    change = f"echo {uuid.uuid4().hex} >> message.txt && git rm -q --ignore-unmatch slow fail raise"
    if marker:
        change += f" && touch {marker} && git add {marker}"
    as_dev(box, f"cd {path} && {change} && git commit -q -am {message!r}")
    return as_dev(box, f"git -C {path} rev-parse HEAD").output.strip()


def entries(box, *matches: str) -> list[dict]:
    out = box.journal("-u", "scratchd", "-o", "json", "--all", *matches)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_for_digest(box, repo: str, sha: str, timeout: float = 120, since_usec: int = 0) -> str:
    """The IMAGE_DIGEST the journal reports for ``sha``, waiting for the push."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in entries(box, f"REPO={repo}", f"COMMIT={sha}"):
            if entry.get("IMAGE_DIGEST") and int(entry["__REALTIME_TIMESTAMP"]) > since_usec:
                return entry["IMAGE_DIGEST"]
        time.sleep(1)
    dump = box.journal("-u", "scratchd", "-n", "80")
    raise AssertionError(f"no IMAGE_DIGEST for {repo} {sha} in the journal:\n{dump}")


def registry_digest(registry, name: str, tag: str) -> str:
    response = requests.get(
        f"{registry.url}/v2/scratchd-test/{name}/manifests/{tag}",
        headers={"Accept": ACCEPT},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def prop(box, name: str) -> str:
    return box.sh(f"systemctl show -P {name} scratchd").output.strip()


def test_service_is_ready_and_watching(service):
    assert prop(service, "ActiveState") == "active"  # Type=notify: READY=1 was sent
    assert prop(service, "User") == "scratchd"
    service.wait(
        "systemctl show -P StatusText scratchd | grep -q 'watching 1 repo'",
        30,
        "STATUS= does not say what is watched",
    )


def test_commit_is_built_and_pushed(service, auth_registry):
    sha = commit(service, "cities", "second")
    digest = wait_for_digest(service, "cities", sha)
    assert registry_digest(auth_registry, "cities", sha) == digest
    story = entries(service, "REPO=cities", f"COMMIT={sha}")
    steps = {e["STEP"] for e in story if "STEP" in e}
    assert "assemble" in steps and len(steps) >= 2  # the build step and the push step
    assert any(e["MESSAGE"] == f"building {sha}" and e["PRIORITY"] == "6" for e in story)
    build_ids = {e["BUILD_ID"] for e in story if "BUILD_ID" in e}
    assert len(build_ids) == 1
    stderr = [e for e in story if e["MESSAGE"] == "note on stderr"]
    assert [(e["STREAM"], e["PRIORITY"]) for e in stderr] == [("stderr", "5")]  # notice
    assert prop(service, "ActiveState") == "active"


@dataclass(frozen=True)
class Proc:
    """A process inside the container, as its ``/proc`` entries say."""

    pid: int
    ppid: int
    nice: int  # field 19 of stat
    policy: int  # field 41 of stat: 0 SCHED_OTHER, 5 SCHED_IDLE
    cmdline: str  # arguments joined by spaces
    autogroup: str  # "/autogroup-N nice K", "" on a kernel without autogroups


def read_proc(box, pid: int) -> Proc:
    stat = box.sh(f"cat /proc/{pid}/stat").output.rsplit(")", 1)[1].split()
    cmdline = box.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline").output
    autogroup = box.sh(f"cat /proc/{pid}/autogroup", check=False)
    return Proc(
        pid=pid,
        ppid=int(stat[1]),
        nice=int(stat[16]),
        policy=int(stat[38]),
        cmdline=cmdline,
        autogroup=autogroup.output.strip() if autogroup.ok else "",
    )


@pytest.fixture(scope="module")
def sleeping_step(service) -> dict[str, Proc]:
    """A slow host step's ``sleep``, its shell, their supervisor and the daemon.

    Read from outside the service (root in the container) while the step
    sleeps, then the build is let finish so the next tests start idle.
    """
    sha = commit(service, "cities", "low priority", marker="slow")
    service.wait(
        f"journalctl -u scratchd --no-pager -o cat REPO=cities COMMIT={sha}"
        " | grep -q 'slow build started' && pgrep -u scratchd -x sleep",
        60,
        "the slow step did not start sleeping",
    )
    pids = service.sh("pgrep -u scratchd -x sleep").output.split()
    assert len(pids) == 1, pids
    sleeping = read_proc(service, int(pids[0]))
    shell = read_proc(service, sleeping.ppid)
    supervisor = read_proc(service, shell.ppid)
    daemon = read_proc(service, int(prop(service, "MainPID")))
    wait_for_digest(service, "cities", sha)
    assert supervisor.ppid == daemon.pid, (supervisor, daemon)
    return {"sleep": sleeping, "shell": shell, "supervisor": supervisor, "daemon": daemon}


def test_host_steps_run_niced_under_sched_idle(sleeping_step):
    """build_nice = 7 and build_sched_idle reach the step under the unit's system-call filter."""
    daemon = sleeping_step["daemon"]
    assert (daemon.nice, daemon.policy) == (0, 0)
    for name in ("shell", "sleep"):
        step = sleeping_step[name]
        assert (name, step.nice, step.policy) == (name, 7, 5), step


def test_host_steps_have_their_own_niced_autogroup(sleeping_step):
    """Each step is a session of its own; with autogroups, the session's nice is what counts."""
    daemon, shell = sleeping_step["daemon"], sleeping_step["shell"]
    if not daemon.autogroup:
        pytest.skip("kernel without autogroups")
    assert shell.autogroup.endswith(" nice 7"), shell
    assert shell.autogroup.split()[0] != daemon.autogroup.split()[0]
    assert daemon.autogroup.endswith(" nice 0"), daemon


def test_host_steps_use_the_bash_supervisor(sleeping_step):
    """setpriv runs under the unit, so steps start in ~2 ms, not a Python interpreter's 20-50."""
    supervisor = sleeping_step["supervisor"].cmdline
    assert supervisor.startswith("/bin/bash --posix -c "), supervisor
    assert " scratchd-reaper " in supervisor and "reaper.py" not in supervisor


def test_host_steps_cannot_raise_their_priority_back(service):
    """The calls the unit allows back only lower: renice 0, SCHED_OTHER and SCHED_FIFO fail."""
    sha = commit(service, "cities", "try to raise", marker="raise")
    wait_for_digest(service, "cities", sha)
    said = [e["MESSAGE"] for e in entries(service, f"COMMIT={sha}", "STEP=assemble")]
    assert "after: nice=7 policy=5" in said, said


def test_failures_only_with_priority_err(service):
    sha = commit(service, "cities", "broken", marker="fail")
    service.wait(
        f"journalctl -u scratchd --no-pager -p err REPO=cities COMMIT={sha} | grep -q failed",
        60,
        "the failed build is not in `journalctl -p err`",
    )
    failures = entries(service, "REPO=cities", "-p", "err")
    assert failures and all(e["COMMIT"] == sha for e in failures)
    step_stderr = entries(service, f"COMMIT={sha}", "STREAM=stderr")
    assert "broken on purpose" in [e["MESSAGE"] for e in step_stderr]
    assert prop(service, "ActiveState") == "active"


def test_registry_password_never_reaches_the_journal(service):
    everything = service.sh("journalctl --no-pager --all -o json").output
    assert PASSWORD not in everything
    assert "registry-password" in service.sh("systemctl cat scratchd").output


def test_reload_picks_up_a_new_repository(service, auth_registry):
    pid = prop(service, "MainPID")
    make_repo(service, "towns", auth_registry.host)
    service.sh(
        "cat >> /etc/scratchd/scratchd.toml <<'EOF'\n" + REPO_BLOCK.format(name="towns") + "EOF"
    )
    service.sh("systemctl reload scratchd")
    assert prop(service, "MainPID") == pid  # reloaded in place, not restarted
    service.wait(
        "systemctl show -P StatusText scratchd | grep -q 'watching 2 repos'",
        30,
        "reload did not reach READY=1 with the new repository",
    )
    sha = as_dev(service, "git -C /srv/git/towns rev-parse HEAD").output.strip()
    digest = wait_for_digest(service, "towns", sha)  # a new branch's tip is built once
    assert registry_digest(auth_registry, "towns", sha) == digest
    assert prop(service, "ActiveState") == "active"


def test_sigkill_restarts_and_redoes_the_interrupted_build(service, auth_registry):
    restarts = int(prop(service, "NRestarts"))
    sha = commit(service, "cities", "slow one", marker="slow")
    service.wait(
        f"journalctl -u scratchd --no-pager -o cat REPO=cities COMMIT={sha}"
        " | grep -q 'slow build started'",
        60,
        "the slow build did not start",
    )
    killed_at = int(service.sh("date +%s%6N").output)
    service.sh("systemctl kill -s SIGKILL --kill-who=main scratchd")
    service.wait(
        f"[ $(systemctl show -P NRestarts scratchd) -gt {restarts} ]"
        " && systemctl is-active -q scratchd",
        60,
        "scratchd was not restarted after SIGKILL",
    )
    digest = wait_for_digest(service, "cities", sha, since_usec=killed_at)
    assert registry_digest(auth_registry, "cities", sha) == digest
    builds = json.loads(
        service.sh("scratchd builds --config /etc/scratchd/scratchd.toml --json --limit 50").output
    )
    mine = [b for b in builds if b.get("commit", b.get("sha")) == sha]
    statuses = sorted(str(b["status"]) for b in mine)
    assert "passed" in statuses, builds


def test_security_exposure(service, record_property):
    out = service.sh("systemd-analyze security --no-pager scratchd").output
    match = re.search(r"Overall exposure level for scratchd\.service: ([0-9.]+)", out)
    assert match, out
    score = float(match.group(1))
    record_property("systemd_analyze_security", score)
    print(f"systemd-analyze security scratchd: {score}")
    assert score <= 4.0


def test_stop_is_clean(service):
    service.sh("systemctl stop scratchd")
    assert prop(service, "ActiveState") == "inactive"
    assert prop(service, "Result") == "success"
    assert prop(service, "ExecMainStatus") == "0"
