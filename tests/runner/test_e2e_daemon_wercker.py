"""Real-style wercker.yml files, unchanged, built by the running daemon on docker.

Three pipelines of the kinds real files have: Node with npm-install and
npm-test, Ruby with bundle-install and a service, Go with
setup-go-workspace and internal/docker-scratch-push. Each is a commit in a
git repository the daemon watches; the daemon picks it up and runs it in
the Debian box with the built-in steps (no step vendored, no registry
reachable), and the Go image it pushed runs under Docker.
"""

from __future__ import annotations

import gzip

import pytest

from tests.git.repos import WorkRepo
from tests.runner import debian_box
from tests.runner.test_builtin_steps_docker import node_project, ruby_project
from tests.runner.test_e2e_docker import output_of
from tests.support.daemon import make_daemon_fixture, repo_table  # noqa: F401


@pytest.fixture(scope="module")
def steps_box(docker_client) -> str:
    return debian_box.docker_image(docker_client)


def build_log(d, name: str, build) -> str:
    path = d.state.log_path(name, build.id)
    gz = path.with_suffix(".log.gz")
    if gz.exists():
        with gzip.open(gz, "rt") as f:
            return f.read()
    return path.read_text()


NODE = """\
box: {box}
build:
  steps:
    - npm-install:
        options: --no-audit --no-fund --offline
    - npm-test
"""

RUBY = """\
box: {box}
services:
  - id: {box}
    name: web
    cmd: python3 -m http.server 8000 --directory /etc
build:
  steps:
    - bundle-install:
        without: development
    - script:
        name: rspec-ish
        code: |
          bundle exec ruby -e 'require "hello"; puts Hello::WORD'
          for i in $(seq 50); do
            ruby -rnet/http -e 'Net::HTTP.get(URI("http://web:8000/hostname"))' && break
            sleep 0.2
          done
          ruby -rnet/http -e 'Net::HTTP.get(URI("http://web:8000/hostname"))' && echo service up
"""

GO = """\
box: {box}
build:
  steps:
    - wercker/setup-go-workspace:
        package-dir: example.org/acme/goapp
    - script:
        name: go build
        code: |
          export GO111MODULE=off CGO_ENABLED=0 GOCACHE=/tmp/go-cache
          go build -o "$WERCKER_OUTPUT_DIR/app" .
deploy:
  steps:
    - internal/docker-scratch-push:
        repository: {registry}/acme/goapp
        tag: $WERCKER_GIT_COMMIT
        cmd: /app
"""

MAIN_GO = (
    'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from a scratch image") }\n'
)


def test_node_ruby_and_go_pipelines_pass_from_commits_the_daemon_picks_up(
    tmp_path, make_daemon, steps_box, registry, docker_client
):
    node = WorkRepo(tmp_path / "node")
    node_project(node.path)
    node.commit(files={"wercker.yml": NODE.format(box=steps_box)})
    ruby = WorkRepo(tmp_path / "ruby")
    ruby_project(ruby.path)
    ruby.commit(files={"wercker.yml": RUBY.format(box=steps_box)})
    go = WorkRepo(tmp_path / "go")
    go.commit(files={"wercker.yml": GO.format(box=steps_box, registry=registry.host),
                     "main.go": MAIN_GO})  # fmt: skip

    d = make_daemon(
        [
            repo_table("node", node.path),
            repo_table("ruby", ruby.path),
            repo_table("go", go.path, pipelines=["build", "deploy"]),
        ],
        executor="docker",
        registries={registry.host: {"insecure": True}},
    ).start()
    built = {name: d.wait_status(w.head(), "passed", timeout=900)
             for name, w in (("node", node), ("ruby", ruby), ("go", go))}  # fmt: skip
    assert "from dep" in build_log(d, "node", built["node"])
    ruby_log = build_log(d, "ruby", built["ruby"])
    assert "hello from a gem" in ruby_log and "service up" in ruby_log
    ref = f"{registry.host}/acme/goapp:{go.head()}"
    docker_client.images.pull(f"{registry.host}/acme/goapp", tag=go.head())
    try:
        assert output_of(docker_client, ref) == "hello from a scratch image\n"
    finally:
        docker_client.images.remove(ref, force=True)
    assert d.stop() == 0
