"""The built-in registry steps, run for real on the host executor.

Each runs the real tool from Debian (npm, bundler, pip, go, kubectl,
ssh-keyscan) against real local things: packages from directories (no
network), an sshd on loopback, HTTP receivers on loopback that check the
exact request sent.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from scratchd.models import BuildStatus
from scratchd.pipeline.parse import parse_plan
from tests.runner.receivers import start_receiver
from tests.runner.test_executor import Run
from tests.support.services import unavailable


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def build(run: Run, yml: str, **kw):
    """Run ``yml``'s build pipeline on the host with HOME inside the test's tmp dir."""
    home = run.tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), **kw.pop("env", {})}
    return run(parse_plan(textwrap.dedent(yml), "wercker.yml"), env=env, **kw)


def lines(run: Run, step: str) -> list[str]:
    return [ln.text for ln in run.lines if ln.step == step]


def needs(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        unavailable(f"not installed: {', '.join(missing)}")  # fails under CI=true


def test_npm_install_and_npm_test_with_a_local_dependency(run):
    needs("npm")
    dep = run.source / "dep"
    dep.mkdir()
    (dep / "package.json").write_text('{"name": "dep", "version": "1.0.0", "main": "index.js"}')
    (dep / "index.js").write_text("module.exports = 'from dep';\n")
    (run.source / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "dependencies": {"dep": "file:./dep"},'
        ' "scripts": {"test": "node -e \\"console.log(require(\'dep\'))\\""}}'
    )
    result = build(
        run,
        """\
        box: node
        build:
          steps:
            - wercker/npm-install@1.1.4:
                options: --no-audit --no-fund --offline
            - npm-test
        """,
    )
    assert result.status == BuildStatus.PASSED, result.message
    assert "from dep" in lines(run, "npm-test")
    assert (run.source / "node_modules" / "dep").exists()
    assert (run.cache / "wercker" / "npm").is_dir()  # npm's cache lives in the cache dir


def test_npm_install_retries_three_times_then_fails(run):
    needs("npm")
    (run.source / "package.json").write_text(
        '{"name": "app", "dependencies": {"left-pad": "1.3.0"}}'
    )
    result = build(run, "build:\n  steps:\n    - npm-install:\n        options: --offline\n")
    assert result.status == BuildStatus.FAILED and result.failed_step == "npm-install"
    attempts = [t for t in lines(run, "npm-install") if "npm install failed (attempt" in t]
    assert attempts == [f"npm install failed (attempt {i} of 3)" for i in (1, 2, 3)]


def test_bundle_install_with_a_path_gem_is_usable_by_later_steps(run):
    needs("bundle", "ruby")
    gem = run.source / "hello"
    (gem / "lib").mkdir(parents=True)
    (gem / "lib" / "hello.rb").write_text("module Hello; WORD = 'hello from a gem'; end\n")
    (gem / "hello.gemspec").write_text(
        'Gem::Specification.new { |s| s.name = "hello"; s.version = "1.0.0"; '
        's.summary = "x"; s.authors = ["x"]; s.files = ["lib/hello.rb"] }\n'
    )
    (run.source / "Gemfile").write_text('gem "hello", path: "hello"\n')
    result = build(
        run,
        """\
        build:
          steps:
            - bundle-install:
                jobs: 2
            - script:
                name: use it
                code: bundle exec ruby -e 'require "hello"; puts Hello::WORD'
        """,
    )
    assert result.status == BuildStatus.PASSED, result.message
    assert "hello from a gem" in lines(run, "use it")
    assert any(t.startswith("bundle install --path") for t in lines(run, "bundle-install"))


def _wheel(path, module: str, text: str) -> None:
    """A minimal pure-Python wheel (no build backend needed offline)."""
    import zipfile

    info = f"{module}-1.0.dist-info"
    files = {
        f"{module}.py": text,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)


def test_pip_install_from_a_requirements_file(run):
    needs("pip3")
    _wheel(run.source / "hello-1.0-py3-none-any.whl", "hello", "WORD = 'hello from pip'\n")
    (run.source / "requirements.txt").write_text("./hello-1.0-py3-none-any.whl\n")
    result = build(
        run,
        """\
        build:
          steps:
            - pip-install:
                extra_args: --no-index --target $WERCKER_OUTPUT_DIR/site
            - script:
                name: import it
                code: >-
                  PYTHONPATH="$WERCKER_OUTPUT_DIR/site"
                  python3 -c 'import hello; print(hello.WORD)'
        """,
    )
    assert result.status == BuildStatus.PASSED, result.message
    assert "hello from pip" in lines(run, "import it")


def test_setup_go_workspace_moves_later_steps_into_the_gopath(run):
    needs("go")
    (run.source / "main.go").write_text('package main\nfunc main() { println("hi from go") }\n')
    result = build(
        run,
        """\
        build:
          steps:
            - setup-go-workspace:
                package-dir: example.org/acme/hello
            - script:
                name: go build
                code: |
                  echo "pwd=$(pwd)"
                  echo "src=$WERCKER_SOURCE_DIR"
                  GO111MODULE=off GOCACHE="$WERCKER_CACHE_DIR/go-build" go build -o hello .
                  ./hello
        """,
        env={"GOPATH": ""},
    )
    assert result.status == BuildStatus.PASSED, result.message
    out = lines(run, "go build")
    workspace = f"{run.tmp}/work1/build/go/src/example.org/acme/hello"
    assert f"pwd={workspace}" in out and f"src={workspace}" in out
    assert "hi from go" in out


def test_a_missing_tool_fails_with_the_debian_package_to_install(run, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mkdir", "env", "cat", "rm", "mktemp", "dirname"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    result = build(
        run,
        "build:\n  steps:\n    - kubectl:\n        command: version\n",
        env={"PATH": str(bin_dir)},
    )
    assert result.status == BuildStatus.FAILED and result.exit_code == 127
    assert (
        "kubectl: the command 'kubectl' is not installed here; install the Debian package "
        "'kubernetes-client' (apt-get install kubernetes-client)"
    ) in lines(run, "kubectl")


def test_bash_template_expands_variables_in_template_files(run):
    (run.source / "config.yml.template").write_text("branch: $WERCKER_GIT_BRANCH\nname: ${APP}\n")
    result = build(run, "build:\n  steps:\n    - bash-template\n", env={"APP": "cities"})
    assert result.status == BuildStatus.PASSED, result.message
    assert (run.source / "config.yml").read_text() == "branch: main\nname: cities\n"


def test_a_vendored_copy_wins_over_the_built_in_step(run):
    vendored = run.source / ".scratchd" / "steps" / "npm-test"
    vendored.mkdir(parents=True)
    (vendored / "run.sh").write_text("echo vendored npm-test\n")
    result = build(run, "build:\n  steps:\n    - npm-test\n")
    assert result.status == BuildStatus.PASSED
    assert "vendored npm-test" in lines(run, "npm-test")


# -- HTTP steps against local receivers ---------------------------------------


def slack_boom_failed(repo: str, commit: str, username: str) -> dict:
    """The message slack-notifier sends to ``#notifications`` when step ``boom`` exited 3."""
    text = f"{repo}: build of main ({commit}) failed at step boom: step 'boom' exited with status 3"
    return {
        "username": username,
        "channel": "#notifications",
        "attachments": [{"fallback": text, "text": text, "color": "danger"}],
    }


def test_slack_notifier_posts_the_result_to_the_webhook(run):
    hook = start_receiver()
    result = build(
        run,
        f"""\
        build:
          steps:
            - script:
                name: boom
                code: exit 3
          after-steps:
            - slack-notifier:
                url: {hook.url}/services/T000/B000/secret-part
                channel: notifications
                username: ci-bot
        """,
    )
    assert result.status == BuildStatus.FAILED
    assert [(r.method, r.path) for r in hook.requests] == [
        ("POST", "/services/T000/B000/secret-part")
    ]
    sent = hook.requests[0]
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == slack_boom_failed("acme/cities", "01234567", "ci-bot")
    # the webhook URL is a credential: never in the build's output
    assert not any("secret-part" in ln.text for ln in run.lines)


def test_slack_notifier_with_notify_on_failed_stays_quiet_when_passed(run):
    hook = start_receiver()
    result = build(
        run,
        "build:\n  steps:\n    - script:\n        code: 'true'\n"
        f"  after-steps:\n    - slack-notifier:\n        url: {hook.url}/x\n"
        "        notify_on: failed\n",
    )
    assert result.status == BuildStatus.PASSED
    assert hook.requests == []


def test_github_create_release_then_upload_asset(run):
    api = start_receiver()
    api.answers[("POST", "/repos/acme/cities/releases")] = (201, {"id": 4711})
    result = build(
        run,
        """\
        build:
          steps:
            - script:
                name: package
                code: printf 'binary' > "$WERCKER_OUTPUT_DIR/app.zip"
            - github-create-release:
                token: $GITHUB_TOKEN
                tag: v1.2.3
                title: Release 1.2.3
                draft: true
            - github-upload-asset:
                token: $GITHUB_TOKEN
                file: $WERCKER_OUTPUT_DIR/app.zip
        """,
        env={
            "GITHUB_TOKEN": "ghp-test-token-1",
            "GITHUB_API_URL": api.url,
            "GITHUB_UPLOAD_URL": api.url,
        },
    )
    assert result.status == BuildStatus.PASSED, result.message
    create, upload = api.requests
    assert (create.method, create.path) == ("POST", "/repos/acme/cities/releases")
    assert create.headers["authorization"] == "token ghp-test-token-1"
    assert create.json() == {
        "tag_name": "v1.2.3",
        "name": "Release 1.2.3",
        "body": "",
        "draft": True,
        "prerelease": False,
    }
    assert (upload.method, upload.path) == (
        "POST",
        "/repos/acme/cities/releases/4711/assets?name=app.zip",
    )
    assert upload.headers["authorization"] == "token ghp-test-token-1"
    assert upload.headers["content-type"] == "application/zip"
    assert upload.body == b"binary"


def test_github_errors_fail_the_step_without_the_token(run):
    api = start_receiver()
    api.answers[("POST", "/repos/acme/cities/releases")] = (401, {"message": "Bad credentials"})
    result = build(
        run,
        "build:\n  steps:\n    - github-create-release:\n        token: $T\n        tag: v1\n",
        env={"T": "ghp-secret-token-2", "GITHUB_API_URL": api.url},
    )
    assert result.status == BuildStatus.FAILED
    assert "answered 401" in result.message and "Bad credentials" in result.message
    assert not any("ghp-secret-token-2" in ln.text for ln in run.lines)


KUBE_DISCOVERY = {
    ("GET", "/version"): (200, {"major": "1", "minor": "28", "gitVersion": "v1.28.0"}),
    ("GET", "/api"): (
        200,
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "x"}],
        },
    ),
    ("GET", "/apis"): (200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
    ("GET", "/api/v1"): (
        200,
        {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get", "list"],
                    "shortNames": ["po"],
                }
            ],
        },
    ),
}


def test_kubectl_talks_to_the_api_server_it_is_given(run):
    needs("kubectl", "openssl")
    api = start_receiver(tls_dir=run.tmp)
    api.answers.update(KUBE_DISCOVERY)
    api.answers[("GET", "/api/v1/namespaces/staging/pods")] = (
        200,
        {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []},
    )
    result = build(
        run,
        f"""\
        deploy:
          steps:
            - kubectl:
                server: {api.url}
                token: $KUBE_TOKEN
                insecure-skip-tls-verify: true
                namespace: staging
                command: get pods
                raw-args: --output=json
        """,
        env={"KUBE_TOKEN": "kube-token-3", "KUBECONFIG": str(run.tmp / "no-kubeconfig")},
    )
    assert result.status == BuildStatus.PASSED, result.message
    pods = [r for r in api.requests if r.path.startswith("/api/v1/namespaces/staging/pods")]
    assert pods and pods[0].method == "GET"
    assert pods[0].headers["authorization"] == "Bearer kube-token-3"
    assert '    "kind": "List",' in lines(run, "kubectl")


# -- ssh steps against a real sshd on loopback ---------------------------------


@pytest.fixture
def sshd(tmp_path):
    needs("ssh-keygen", "ssh-keyscan", "ssh")
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    from tests.support.services import free_port, wait_for

    d = tmp_path / "sshd"
    d.mkdir()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True
    )
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True
    )
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    port = free_port()
    proc = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-p", str(port), "-h", str(d / "host"),
         "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={d / 'authorized_keys'}",
         "-o", "PermitRootLogin=prohibit-password", "-o", "StrictModes=no",
         "-o", f"PidFile={d / 'pid'}", "-o", "UsePAM=no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import socket

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, "sshd")
    yield d, port
    proc.terminate()
    proc.wait(timeout=10)


def test_add_to_known_hosts_with_a_matching_fingerprint(run, sshd):
    d, port = sshd
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(d / "host.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    result = build(
        run,
        f"""\
        build:
          steps:
            - add-to-known_hosts:
                hostname: 127.0.0.1
                port: "{port}"
                type: ed25519
                fingerprint: {fingerprint}
        """,
    )
    assert result.status == BuildStatus.PASSED, result.message
    known = (run.tmp / "home" / ".ssh" / "known_hosts").read_text()
    host_key = (d / "host.pub").read_text().split()[1]
    assert f"[127.0.0.1]:{port} ssh-ed25519 {host_key}" in known


def test_add_to_known_hosts_refuses_a_wrong_fingerprint(run, sshd):
    _, port = sshd
    result = build(
        run,
        f"build:\n  steps:\n    - add-to-known_hosts:\n        hostname: 127.0.0.1\n"
        f'        port: "{port}"\n        fingerprint: SHA256:notthekey\n',
    )
    assert result.status == BuildStatus.FAILED
    assert not (run.tmp / "home" / ".ssh" / "known_hosts").exists()


def test_add_ssh_key_writes_a_key_that_logs_in(run, sshd):
    d, port = sshd
    private = (d / "user").read_text()
    result = build(
        run,
        f"""\
        build:
          steps:
            - add-to-known_hosts:
                hostname: 127.0.0.1
                port: "{port}"
            - add-ssh-key:
                keyname: DEPLOY_KEY
                host: 127.0.0.1
            - script:
                name: ssh in
                code: >-
                  ssh -F "$HOME/.ssh/config" -o UserKnownHostsFile="$HOME/.ssh/known_hosts"
                  -o BatchMode=yes -p {port} root@127.0.0.1 echo logged-in-over-ssh
        """,
        env={"DEPLOY_KEY_PRIVATE": private},
    )
    assert result.status == BuildStatus.PASSED, result.message
    assert "logged-in-over-ssh" in lines(run, "ssh in")
    key_body = private.splitlines()[1]
    assert not any(key_body in ln.text for ln in run.lines)  # the key never shows
