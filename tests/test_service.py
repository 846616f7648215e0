"""The daemon as users run it: a real ``scratchd run`` process on real repositories.

Steps are tiny (echo, a short sleep) and run with the host executor, so a
build takes a fraction of a second and the whole file stays quick.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import sys
import time

from tests.git.repos import WorkRepo, bare_repo, git
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401
from tests.support.services import run_registry, unavailable

SLOW_YML = QUICK_YML + "          sleep {sleep}\n"


def project(path, yml: str = QUICK_YML) -> WorkRepo:
    repo = WorkRepo(path)
    repo.commit(f"{path.name}: wercker.yml", files={"wercker.yml": yml, "counter.txt": "0\n"})
    return repo


def scratchd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", *args], capture_output=True, text=True, timeout=60
    )


def test_commit_builds_pushes_image_and_keeps_a_compressed_log(tmp_path, make_daemon, registry):
    yml = QUICK_YML.replace("cat counter.txt", 'cp counter.txt "$WERCKER_OUTPUT_DIR/"') + (
        "deploy:\n  steps:\n    - internal/docker-scratch-push:\n"
        f"        repository: {registry.host}/test/app\n"
        "        tag: $WERCKER_GIT_COMMIT\n        cmd: /counter.txt\n"
    )
    work = project(tmp_path / "app", yml)
    d = make_daemon(
        [repo_table("app", work.path, pipelines=["build", "deploy"])],
        registries={registry.host: {"insecure": True}},
    ).start()
    first = d.wait_status(work.head(), "passed")  # a branch seen for the first time: its tip
    sha = work.commit()
    build = d.wait_status(sha, "passed")
    assert build.trigger == "push" and build.branch == "main" and build.id > first.id
    assert build.images and build.images[0].startswith("sha256:")
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/test/app:{sha}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(inspect.stdout)["Digest"] == build.images[0]
    log_gz = d.state.log_path("app", build.id).with_suffix(".log.gz")
    with gzip.open(log_gz, "rt") as f:
        text = f.read()
    assert f"building {sha} on main" in text
    assert text.splitlines()[0][:4].isdigit() and "Z " in text.splitlines()[0]
    assert not d.state.log_path("app", build.id).exists()
    assert d.stop() == 0


def test_push_to_bare_repo_force_push_new_and_deleted_branch_and_tags(tmp_path, make_daemon):
    server = bare_repo(tmp_path / "server.git")
    work = project(tmp_path / "work")
    work.push(str(server), "main")
    d = make_daemon(
        [repo_table("srv", server, branches=["main", "feature/*"], tags=["v*"])]
    ).start()
    initial = d.wait_status(work.head(), "passed").sha

    pushed = [work.commit(), work.commit()]
    work.push(str(server), "main")
    d.wait_status(pushed[-1], "passed")

    git(work.path, "reset", "-q", "--hard", "HEAD~2")
    rewritten = work.commit(files={"counter.txt": "rewritten\n"})
    work.push(str(server), "main", force=True)
    d.wait_status(rewritten, "passed")

    work.branch("feature/x")
    work.switch("feature/x")
    feature = work.commit()
    work.push(str(server), "feature/x")
    assert d.wait_status(feature, "passed").branch == "feature/x"

    git(work.path, "tag", "-a", "v1.0", "-m", "release")
    work.push(str(server), "v1.0")
    d.wait(
        lambda: [b.status for b in d.builds(ref="refs/tags/v1.0")] == ["passed"],
        what="the tag's build passed",
    )
    [tag_build] = d.builds(ref="refs/tags/v1.0")
    assert (tag_build.branch, tag_build.sha) == ("v1.0", feature)

    assert [(b.ref, b.sha, b.status) for b in d.builds()] == [
        ("refs/heads/main", initial, "passed"),  # first sight: the tip
        ("refs/heads/main", pushed[-1], "passed"),  # two commits, one push: coalesced
        ("refs/heads/main", rewritten, "passed"),
        ("refs/heads/feature/x", feature, "passed"),
        ("refs/tags/v1.0", feature, "passed"),
    ]
    assert d.store().get_ref("srv", "refs/heads/main") == rewritten


def test_deleted_branch_drops_its_queued_builds(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="1"))
    d = make_daemon(
        [repo_table("w", work.path, branches=["*"], build_every_commit=True)],
        max_concurrent_builds=1,
    ).start()
    d.wait(lambda: d.store().running(), what="the first build running")
    work.branch("doomed")
    work.switch("doomed")
    queued = [work.commit(), work.commit()]
    d.wait(lambda: len(d.store().queued()) >= 2, what="doomed builds queued")
    work.switch("main")
    git(work.path, "branch", "-D", "doomed")
    d.wait(
        lambda: (
            all(
                b.status == "cancelled"
                for b in d.builds(ref="refs/heads/doomed")
                if b.sha in queued
            )
            and d.builds(ref="refs/heads/doomed")
        ),
        what="doomed builds cancelled",
    )
    assert "deleted" in d.builds(ref="refs/heads/doomed")[-1].message
    assert d.store().get_ref("w", "refs/heads/doomed") is None


def test_broken_wercker_yml_and_missing_repo_do_not_stop_the_others(tmp_path, make_daemon):
    good = project(tmp_path / "good")
    broken = project(tmp_path / "broken", "build:\n  steps: not-a-list\n")
    d = make_daemon(
        [
            repo_table("broken", broken.path),
            repo_table("missing", tmp_path / "not-there"),
            repo_table("good", good.path),
        ]
    ).start()
    failed = d.wait_status(broken.head(), "failed")
    assert "broken:wercker.yml:2" in failed.message and "steps" in failed.message
    d.wait_status(good.head(), "passed")
    sha = good.commit()
    d.wait_status(sha, "passed")
    d.wait(lambda: "missing cannot be read" in d.log(), what="a log line for the missing repo")
    assert str(tmp_path / "not-there") in d.log()
    assert d.proc.poll() is None


def test_sighup_adds_and_removes_repos_and_rejects_a_bad_config(tmp_path, make_daemon):
    a, b = project(tmp_path / "a"), project(tmp_path / "b")
    d = make_daemon([repo_table("a", a.path)]).start()
    d.wait_status(a.head(), "passed")

    d.write_config([repo_table("a", a.path), repo_table("b", b.path)])
    d.signal(signal.SIGHUP)
    d.wait_status(b.head(), "passed")

    d.write_config([repo_table("b", b.path)])
    d.signal(signal.SIGHUP)
    d.wait(lambda: "repository a removed" in d.log(), what="reload removing a")
    a_sha, b_sha = a.commit(), b.commit()
    d.wait_status(b_sha, "passed")
    time.sleep(0.5)
    assert not [x for x in d.builds() if x.sha == a_sha]

    d.config.write_text(d.config.read_text() + "\n[daemon.bogus]\n")
    d.signal(signal.SIGHUP)
    d.wait(lambda: "reload rejected" in d.log(), what="rejected reload")
    b_next = b.commit()
    d.wait_status(b_next, "passed")
    assert d.proc.poll() is None


def test_sigterm_lets_running_builds_finish_within_the_grace(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="1.5"))
    d = make_daemon([repo_table("w", work.path)], shutdown_grace="20s").start()
    d.wait(lambda: d.store().running(), what="a running build")
    assert d.stop() == 0
    [build] = d.builds()
    assert build.status == "passed"
    assert d.store().daemon_info().status == "stopped"


def test_sigterm_past_the_grace_interrupts_and_the_next_start_rebuilds(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="30"))
    d = make_daemon([repo_table("w", work.path)], shutdown_grace="0.5s").start()
    d.wait(lambda: d.store().running(), what="a running build")
    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 15
    [build] = d.builds()
    assert build.status == "interrupted"
    (work.path / "wercker.yml").write_text(QUICK_YML)  # uncommitted: the build keeps its commit
    d.write_config([repo_table("w", work.path)], shutdown_grace="0.5s")
    d.start()
    d.wait(lambda: d.store().get(build.id).status == "running", what="the interrupted rerun")
    assert d.store().get(build.id).interruptions == 1


def test_notes_record_the_result_on_the_commit(tmp_path, make_daemon):
    work = project(tmp_path / "w")
    d = make_daemon([repo_table("w", work.path, notes=True)]).start()
    build = d.wait_status(work.head(), "passed")
    d.wait(lambda: git(work.path, "notes", "--ref=scratchd", "list"), what="a note")
    shown = git(work.path, "log", "-1", "--notes=scratchd", "--format=%N")
    assert shown.splitlines()[:2] == ["scratchd: passed", f"build: {build.id}"]


def test_cli_trigger_and_cancel_are_picked_up_within_a_second(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="30"))
    d = make_daemon([repo_table("w", work.path)]).start()
    first = d.wait_status(work.head(), "running")
    t0 = time.monotonic()
    out = scratchd("cancel", "--config", str(d.config), str(first.id))
    assert out.returncode == 0, out.stderr
    d.wait_status(work.head(), "cancelled", timeout=10)
    assert time.monotonic() - t0 < 3

    (work.path / "wercker.yml").write_text(QUICK_YML)
    quick = work.commit(files={"wercker.yml": QUICK_YML})
    d.wait_status(quick, "passed")
    t0 = time.monotonic()
    out = scratchd("trigger", "--config", str(d.config), "w")
    assert out.returncode == 0, out.stderr
    d.wait(lambda: len([b for b in d.builds() if b.sha == quick]) == 2, what="manual build")
    manual = [b for b in d.builds() if b.sha == quick][-1]
    d.wait(lambda: d.store().get(manual.id).started_at, what="manual build started")
    assert d.store().get(manual.id).started_at - manual.created_at < 1.0
    assert manual.trigger == "manual"
    d.wait_status(quick, "passed")
    assert time.monotonic() - t0 < 10


def test_keep_builds_prunes_old_records_logs_and_work_dirs(tmp_path, make_daemon):
    work = project(tmp_path / "w")
    d = make_daemon([repo_table("w", work.path)], keep_builds=2).start()
    shas = [work.head()]
    d.wait_status(shas[-1], "passed")
    for _ in range(3):
        shas.append(work.commit())
        d.wait_status(shas[-1], "passed")
    kept_ids = []

    def pruned() -> bool:
        kept_ids[:] = [b.id for b in d.builds()]
        logs = sorted(p.name for p in (d.state.logs / "w").iterdir())
        work_dirs = sorted(p.name for p in (d.state.root / "work" / "w").iterdir())
        return (
            len(kept_ids) == 2
            and logs == sorted(f"{i}.log.gz" for i in kept_ids)
            and work_dirs == sorted(str(i) for i in kept_ids)
        )

    # Rows go first, files right after (a crash in between leaves files, never rows).
    d.wait(pruned, what="records, logs and work dirs pruned to two builds")
    assert [b.sha for b in d.builds()] == shas[-2:]


def test_cancel_superseded_cancels_the_running_build(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="30"))
    d = make_daemon([repo_table("w", work.path, cancel_superseded=True)]).start()
    first = d.wait_status(work.head(), "running")
    newer = work.commit(files={"wercker.yml": QUICK_YML})
    d.wait_status(newer, "passed", timeout=30)
    cancelled = d.store().get(first.id)
    assert cancelled.status == "cancelled" and f"superseded by {newer}" in cancelled.message


def test_reload_brings_registry_credentials_to_the_next_push(tmp_path, make_daemon):
    if shutil.which("htpasswd") is None:
        unavailable("htpasswd is not installed (apt-get install apache2-utils)")
    password = "reload-s3cret-token"
    line = subprocess.run(
        ["htpasswd", "-Bbn", "robot", password], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "htpasswd").write_text(line)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd\n    path: {tmp_path / 'htpasswd'}\n"
    with run_registry(tmp_path / "registry", auth=auth) as registry:
        yml = QUICK_YML.replace("cat counter.txt", 'cp counter.txt "$WERCKER_OUTPUT_DIR/"') + (
            "deploy:\n  steps:\n    - internal/docker-scratch-push:\n"
            f"        repository: {registry.host}/test/reload\n        cmd: /counter.txt\n"
        )
        work = project(tmp_path / "app", yml)
        tables = [repo_table("app", work.path, pipelines=["build", "deploy"])]
        d = make_daemon(tables).start()
        refused = d.wait_status(work.head(), "failed")
        assert "requires a username and password" in refused.message
        token = tmp_path / "token"
        token.write_text(password + "\n")
        token.chmod(0o600)
        d.registries = {registry.host: {"username": "robot", "password_file": str(token)}}
        d.write_config(tables)
        d.signal(signal.SIGHUP)
        d.wait(lambda: "config reloaded" in d.log(), what="the reload")
        sha = work.commit()
        assert d.wait_status(sha, "passed").images
    assert password not in d.log()


def test_removing_a_repository_cancels_its_queued_builds(tmp_path, make_daemon):
    slow, gone = project(tmp_path / "slow", SLOW_YML.format(sleep="3")), project(tmp_path / "g")
    d = make_daemon(
        [repo_table("slow", slow.path), repo_table("gone", gone.path)], max_concurrent_builds=1
    )
    gone_sha = gone.head()
    d.start()
    d.wait(lambda: [b for b in d.builds() if b.sha == gone_sha], what="gone's build recorded")
    d.wait(lambda: d.store().running(), what="a running build")
    [running] = d.store().running()
    if running.repo == "gone":  # make sure the build to drop is the queued one
        d.wait_status(gone_sha, "passed")
        gone_sha = gone.commit()
        d.wait(lambda: d.store().queued(), what="gone's next build queued")

    d.write_config([repo_table("slow", slow.path)], max_concurrent_builds=1)
    d.signal(signal.SIGHUP)
    d.wait(lambda: "repository gone removed" in d.log(), what="reload removing gone")
    [dropped] = [b for b in d.builds() if b.sha == gone_sha]
    assert dropped.status == "cancelled"
    assert dropped.message == "repository removed from the config"
    d.wait_status(slow.head(), "passed")


def test_cancel_is_honoured_while_draining(tmp_path, make_daemon):
    work = project(tmp_path / "w", SLOW_YML.format(sleep="60"))
    d = make_daemon([repo_table("w", work.path)], shutdown_grace="60s").start()
    build = d.wait_status(work.head(), "running")
    d.signal(signal.SIGTERM)
    d.wait(lambda: "stopping" in d.log(), what="the drain to begin")
    t0 = time.monotonic()
    out = scratchd("cancel", "--config", str(d.config), str(build.id))
    assert out.returncode == 0, out.stderr
    assert d.proc.wait(20) == 0
    assert time.monotonic() - t0 < 10  # not the 60 s grace
    assert d.store().get(build.id).status == "cancelled"


SECRET = "hunter2-sekrit-token"
LEAKY_YML = """box: busybox
build:
  steps:
    - script:
        name: leak
        code: |
          echo "token is $TOKEN"
          echo "failing with $TOKEN" >&2
          exit 3
"""


def test_secrets_reach_no_log_no_message_and_no_database(tmp_path, make_daemon):
    secrets_file = tmp_path / "leaky.env"
    secrets_file.write_text(f"TOKEN={SECRET}\n")
    secrets_file.chmod(0o600)
    work = project(tmp_path / "leaky", LEAKY_YML)
    d = make_daemon([repo_table("leaky", work.path, secrets_file=str(secrets_file))]).start()
    build = d.wait_status(work.head(), "failed")
    assert d.stop() == 0

    with gzip.open(d.state.log_path("leaky", build.id).with_suffix(".log.gz"), "rt") as f:
        build_log = f.read()
    assert "token is ***" in build_log and "failing with ***" in build_log
    assert SECRET not in build_log
    assert SECRET not in d.log()  # the daemon's own stderr
    assert SECRET not in (build.message or "")
    for db_file in d.state.db.parent.glob(d.state.db.name + "*"):  # the DB, -wal, -shm
        assert SECRET.encode() not in db_file.read_bytes(), db_file.name
