"""The built-in registry steps inside a Debian box on the docker executor.

The box is Debian 12 made offline with debootstrap (``tests/runner/debian_box``)
holding Debian's npm, bundler, pip, Go, kubectl and ssh: the steps run there
the way they ran in a user's box, on packages taken from the repository
itself (no registry is reachable). What the ssh and HTTP steps talk to runs
as the pipeline's own ``services:`` containers on the network the pipeline
creates: a real sshd, and the recording HTTP receivers of
:mod:`tests.runner.receivers` (kubectl's API server, the Slack webhook, the
GitHub API), whose record a later step of the pipeline prints for the test.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import textwrap
from pathlib import Path

import pytest

from scratchd.models import BuildStatus
from tests.runner import debian_box, receivers
from tests.runner.test_builtin_steps_host import KUBE_DISCOVERY, _wheel, slack_boom_failed
from tests.runner.test_e2e_docker import COMMIT, Builds


@pytest.fixture(scope="session")
def steps_box(docker_client) -> str:
    return debian_box.docker_image(docker_client)


@pytest.fixture
def builds(tmp_path, new_docker_backend) -> Builds:
    return Builds(tmp_path, new_docker_backend)


def node_project(source) -> None:
    dep = source / "dep"
    dep.mkdir()
    (dep / "package.json").write_text('{"name": "dep", "version": "1.0.0", "main": "index.js"}')
    (dep / "index.js").write_text("module.exports = 'from dep';\n")
    (source / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "dependencies": {"dep": "file:./dep"},'
        ' "scripts": {"test": "node -e \\"console.log(require(\'dep\'))\\""}}'
    )


def ruby_project(source) -> None:
    gem = source / "hello"
    (gem / "lib").mkdir(parents=True)
    (gem / "lib" / "hello.rb").write_text("module Hello; WORD = 'hello from a gem'; end\n")
    (gem / "hello.gemspec").write_text(
        'Gem::Specification.new { |s| s.name = "hello"; s.version = "1.0.0"; '
        's.summary = "x"; s.authors = ["x"]; s.files = ["lib/hello.rb"] }\n'
    )
    (source / "Gemfile").write_text('gem "hello", path: "hello"\n')


def test_npm_bundle_and_pip_steps_in_the_box(builds, steps_box):
    node_project(builds.source)
    ruby_project(builds.source)
    _wheel(builds.source / "hello_py-1.0-py3-none-any.whl", "hello_py", "WORD = 'from pip'\n")
    (builds.source / "requirements.txt").write_text("./hello_py-1.0-py3-none-any.whl\n")
    result = builds(
        f"""\
box: {steps_box}
build:
  steps:
    - wercker/npm-install@1.1.4:
        options: --no-audit --no-fund --offline
    - npm-test
    - bundle-install
    - script:
        name: use gem
        code: bundle exec ruby -e 'require "hello"; puts Hello::WORD'
    - pip-install:
        extra_args: --no-index --break-system-packages
    - script:
        name: use wheel
        code: python3 -c 'import hello_py; print(hello_py.WORD)'
"""
    )
    assert result.status == BuildStatus.PASSED, result.output
    assert "from dep" in builds.stdout("npm-test")
    assert builds.stdout("use gem") == ["hello from a gem"]
    assert builds.stdout("use wheel") == ["from pip"]


def test_setup_go_workspace_in_the_box(builds, steps_box):
    (builds.source / "main.go").write_text('package main\nfunc main() { println("hi") }\n')
    result = builds(
        f"""\
box: {steps_box}
build:
  steps:
    - setup-go-workspace:
        package-dir: example.org/acme/hello
    - script:
        name: go build
        code: |
          echo "pwd=$(pwd) gopath=$GOPATH"
          GO111MODULE=off GOCACHE=/tmp/go-cache go build -o "$WERCKER_OUTPUT_DIR/hello" .
"""
    )
    assert result.status == BuildStatus.PASSED, result.output
    workspace = "/pipeline/go/src/example.org/acme/hello"
    assert builds.stdout("go build") == [f"pwd={workspace} gopath=/pipeline/go"]


def test_a_tool_missing_from_the_box_names_its_debian_package(builds, busybox_box):
    result = builds(f"box: {busybox_box}\nbuild:\n  steps:\n    - npm-test\n")
    assert result.status == BuildStatus.FAILED and result.exit_code == 127
    assert "install the Debian package 'npm' (apt-get install npm)" in result.output


def test_base_path_in_the_box_is_the_absolute_path_the_file_gives(builds, busybox_box):
    (builds.source / "main.txt").write_text("source file\n")
    result = builds(
        f"""\
box: {busybox_box}
build:
  base-path: /go/src/example.org/acme/cities
  steps:
    - script:
        name: where
        code: |
          echo "pwd=$(pwd) src=$WERCKER_SOURCE_DIR"
          cat main.txt
"""
    )
    assert result.status == BuildStatus.PASSED, result.output
    path = "/go/src/example.org/acme/cities"
    assert builds.stdout("where") == [f"pwd={path} src={path}", "source file"]


def wait_step(*targets: str) -> str:
    """A script step (YAML text) waiting until each ``host:port`` accepts connections:
    services start beside the pipeline container, not before it."""
    code = "".join(
        f"for i in $(seq 300); do (exec 3<>/dev/tcp/{host}/{port}) 2>/dev/null && break; "
        f"sleep 0.1; done; (exec 3<>/dev/tcp/{host}/{port})\n"
        for host, port in (t.split(":") for t in targets)
    )
    return "    - script:\n        name: wait for services\n        code: |\n" + textwrap.indent(
        code, " " * 10
    )


def test_kubectl_in_the_box_talks_to_an_api_server_service(builds, steps_box):
    pods = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}
    answers = {**KUBE_DISCOVERY, ("GET", "/api/v1/namespaces/staging/pods"): (200, pods)}
    result = builds(
        f"""\
box: {steps_box}
services:
{receivers.service("kube", steps_box, 8443, answers, tls=True)}
deploy:
  steps:
{wait_step("kube:8443")}
    - kubectl:
        server: https://$KUBE_PORT_8443_TCP_ADDR:8443
        token: $KUBE_TOKEN
        insecure-skip-tls-verify: true
        namespace: staging
        command: get pods
        raw-args: --output=json
{receivers.fetch_step("what kube got", "https://kube:8443")}""",
        pipelines=("deploy",),
        env={"KUBE_TOKEN": "kube-token-in-box"},
    )
    assert result.status == BuildStatus.PASSED, result.output
    got = receivers.recorded(builds.stdout("what kube got"))
    listed = [r for r in got if r.path.startswith("/api/v1/namespaces/staging/pods")]
    assert [(r.method, r.path) for r in listed] == [
        ("GET", "/api/v1/namespaces/staging/pods?limit=500")
    ]
    assert {r.headers["authorization"] for r in got} == {"Bearer kube-token-in-box"}
    assert listed[0].headers["user-agent"].startswith("kubectl/")
    assert '    "kind": "List",' in builds.stdout("kubectl")
    assert not any("kube-token-in-box" in ln.text for ln in builds.lines)


def test_github_and_slack_steps_of_a_docker_pipeline_reach_a_service(builds, steps_box):
    """The daemon makes these requests (webcall), so the URLs name the service by
    the link variables the box has; the asset is read from the shared output dir."""
    answers = {("POST", "/repos/acme/bb/releases"): (201, {"id": 4711})}
    hooks = "http://$HOOKS_PORT_8080_TCP_ADDR:8080"
    result = builds(
        f"""\
box: {steps_box}
services:
{receivers.service("hooks", steps_box, 8080, answers)}
build:
  steps:
{wait_step("hooks:8080")}
    - script:
        name: package
        code: printf 'binary' > "$WERCKER_OUTPUT_DIR/app.zip"
    - github-create-release:
        token: $GITHUB_TOKEN
        tag: v1.2.3
        api-url: {hooks}
    - github-upload-asset:
        token: $GITHUB_TOKEN
        file: $WERCKER_OUTPUT_DIR/app.zip
        upload-url: {hooks}
    - script:
        name: boom
        code: exit 3
  after-steps:
    - slack-notifier:
        url: {hooks}/services/T000/B000/secret-part
        channel: notifications
{receivers.fetch_step("what hooks got", "http://hooks:8080")}""",
        env={"GITHUB_TOKEN": "ghp-token-in-box"},
    )
    assert result.status == BuildStatus.FAILED and result.failed_step == "boom", result.output
    create, upload, slack = receivers.recorded(builds.stdout("what hooks got"))
    assert (create.method, create.path) == ("POST", "/repos/acme/bb/releases")
    assert create.headers["authorization"] == "token ghp-token-in-box"
    assert create.json() == {
        "tag_name": "v1.2.3", "name": "v1.2.3", "body": "", "draft": False, "prerelease": False
    }  # fmt: skip
    assert (upload.method, upload.path) == (
        "POST",
        "/repos/acme/bb/releases/4711/assets?name=app.zip",
    )
    assert upload.headers["content-type"] == "application/zip" and upload.body == b"binary"
    assert (slack.method, slack.path) == ("POST", "/services/T000/B000/secret-part")
    assert slack.json() == slack_boom_failed("acme/bb", COMMIT.sha[:8], "wercker")
    assert not any("ghp-token-in-box" in ln.text for ln in builds.lines)


@pytest.mark.parametrize(
    ("make", "file", "error"),
    [
        ('ln -s "$HOST_FILE" "$WERCKER_OUTPUT_DIR/leak.txt"', "$WERCKER_OUTPUT_DIR/leak.txt",
         "links out of the pipeline's directories"),
        ("true", "$HOST_FILE", "is not in a directory the box shares with scratchd"),
        ("true", "$WERCKER_OUTPUT_DIR/../../../$HOST_FILE",
         "is not in a directory the box shares with scratchd"),
    ],
)  # fmt: skip
def test_github_upload_asset_never_uploads_the_daemons_own_files(
    builds, busybox_box, make, file, error
):
    """The daemon reads the asset: a box path must not lead it to a file of its own host."""
    secret = builds.tmp / "daemon-only.txt"
    secret.write_text("the daemon's own file\n")
    result = builds(
        f"""\
box: {busybox_box}
build:
  steps:
    - script:
        name: make
        code: {make}
    - github-upload-asset:
        token: t
        release-id: "1"
        file: {file}
        upload-url: http://127.0.0.1:9
""",
        env={"HOST_FILE": str(secret)},
    )
    assert result.status == BuildStatus.FAILED and result.failed_step == "github-upload-asset"
    assert error in result.message, result.output


def local_apt_repository(directory: Path) -> None:
    """A flat apt repository holding one package made here with dpkg-deb."""
    tree = directory.parent / "hello-deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "bin").mkdir(parents=True)
    tool = tree / "usr" / "bin" / "scratchd-hello"
    tool.write_text("#!/bin/sh\necho hello from a local package\n")
    tool.chmod(0o755)
    control = (
        "Package: scratchd-hello\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: scratchd tests <tests@example.org>\nDescription: test package\n"
    )
    (tree / "DEBIAN" / "control").write_text(control)
    directory.mkdir()
    deb = directory / "scratchd-hello_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)],
        check=True, capture_output=True,
    )  # fmt: skip
    data = deb.read_bytes()
    (directory / "Packages").write_text(
        f"{control}Filename: ./{deb.name}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def test_install_packages_in_the_box_from_the_boxs_apt_sources(builds, steps_box):
    """Debian boxes come without package lists: the step fetches them first. The
    box's sources are a local repository here (the test reaches no mirror)."""
    local_apt_repository(builds.source / "repo")
    result = builds(
        f"""\
box: {steps_box}
build:
  steps:
    - script:
        name: local apt source
        code: |
          rm -f /etc/apt/sources.list.d/*
          echo "deb [trusted=yes] file:$WERCKER_SOURCE_DIR/repo ./" > /etc/apt/sources.list
    - install-packages:
        packages: scratchd-hello
    - script:
        name: use it
        code: scratchd-hello
    - install-packages:
        packages: no-such-package
"""
    )
    assert result.status == BuildStatus.FAILED, result.output
    assert builds.stdout("use it") == ["hello from a local package"]
    assert result.failed_step == "install-packages"
    assert "install-packages: apt-get could not install: no-such-package" in result.output


def test_bash_template_in_the_box(builds, steps_box):
    (builds.source / "config.yml.template").write_text(
        "branch: $WERCKER_GIT_BRANCH\nroot: ${HOME}\n"
    )
    result = builds(
        f"""\
box: {steps_box}
build:
  steps:
    - bash-template
    - script:
        name: show
        code: cat config.yml
"""
    )
    assert result.status == BuildStatus.PASSED, result.output
    assert builds.stdout("show") == ["branch: main", "root: /root"]


SSHD_CMD = (
    "/bin/bash -c 'mkdir -p /run/sshd /root/.ssh "
    '&& printf "%s" "$HOST_KEY" | base64 -d > /etc/ssh/test_host_key '
    "&& chmod 600 /etc/ssh/test_host_key "
    '&& printf "%s" "$AUTHORIZED" | base64 -d > /root/.ssh/authorized_keys '
    "&& exec /usr/sbin/sshd -D -e -h /etc/ssh/test_host_key -o UsePAM=no "
    "-o PermitRootLogin=prohibit-password'"
)


def keypair(directory: Path, name: str) -> tuple[str, str]:
    """(private, public) of a fresh ed25519 key made with ssh-keygen."""
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.read_text(), (directory / f"{name}.pub").read_text()


def test_ssh_steps_in_the_box_against_an_sshd_service(builds, steps_box):
    """add-to-known_hosts scans, and checks the fingerprint of, a real sshd running
    as a service of the pipeline; add-ssh-key's key then logs in to it."""
    host_private, host_public = keypair(builds.tmp, "host")
    user_private, user_public = keypair(builds.tmp, "user")
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(builds.tmp / "host.pub")],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    b64 = {k: base64.b64encode(v.encode()).decode() for k, v in
           (("HOST_KEY", host_private), ("AUTHORIZED", user_public))}  # fmt: skip
    result = builds(
        f"""\
box: {steps_box}
services:
  - name: sshd
    id: {steps_box}
    cmd: {SSHD_CMD}
    ports: ["22"]
    env:
      HOST_KEY: "{b64["HOST_KEY"]}"
      AUTHORIZED: "{b64["AUTHORIZED"]}"
build:
  steps:
{wait_step("sshd:22")}
    - add-to-known_hosts:
        hostname: sshd
        type: ed25519
        fingerprint: {fingerprint}
    - add-ssh-key:
        keyname: DEPLOY_KEY
        host: sshd
    - script:
        name: ssh in
        code: |
          cat ~/.ssh/known_hosts
          ssh -o BatchMode=yes root@sshd 'test -n "$SSH_CONNECTION" && echo "over ssh as $(id -un)"'
    - add-to-known_hosts:
        hostname: sshd
        fingerprint: SHA256:notthekey
""",
        env={"DEPLOY_KEY_PRIVATE": user_private},
    )
    assert result.status == BuildStatus.FAILED, result.output
    assert result.failed_step == "add-to-known_hosts"
    assert "no key of sshd has fingerprint SHA256:notthekey" in result.output
    host_key = host_public.split()[1]
    out = builds.stdout("ssh in")
    assert out[0] == f"sshd ssh-ed25519 {host_key}"
    assert out[1:] == ["over ssh as root"]
    assert not any(user_private.splitlines()[1] in ln.text for ln in builds.lines)
