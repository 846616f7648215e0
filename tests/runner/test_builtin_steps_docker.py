"""The built-in registry steps inside a Debian box on the docker executor.

The box is Debian 12 made offline with debootstrap (``tests/runner/debian_box``)
holding Debian's npm, bundler, pip and Go: the steps run there the way
they ran in a user's box, on packages taken from the repository itself (no
registry is reachable). The HTTP and ssh steps are checked on the host
executor (``test_builtin_steps_host``), where their loopback receivers are.
"""

from __future__ import annotations

import pytest

from scratchd.models import BuildStatus
from tests.runner import debian_box
from tests.runner.test_builtin_steps_host import _wheel
from tests.runner.test_e2e_docker import Builds


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
