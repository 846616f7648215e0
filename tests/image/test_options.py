"""The option parsers follow wercker's scratch-push semantics and name the bad option."""

from __future__ import annotations

import pytest

from scratchd.errors import ImageOptionError, ScratchdError
from scratchd.image import options
from scratchd.models import ImageSpec, Platform


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("./app --port 5000", ("./app", "--port", "5000")),
        ("sh -c 'echo hi there'", ("sh", "-c", "echo hi there")),
        ('["/app", "a b"]', ("/app", "a b")),
        ("[]", ()),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_command(text, expected):
    assert options.parse_command(text) == expected


@pytest.mark.parametrize("text", ['["/app", 1]', "[not json", '["a",]', "echo 'unclosed"])
def test_parse_command_refuses_and_names_option(text):
    with pytest.raises(ImageOptionError, match=r"^--entrypoint: "):
        options.parse_command(text, what="--entrypoint")


def test_parse_ports_wercker_forms():
    assert options.parse_ports("5000, 8080/udp") == ("5000/tcp", "8080/udp")
    assert options.parse_ports(["5000", "5000/tcp", "53/UDP 9090"]) == (
        "5000/tcp",
        "53/udp",
        "9090/tcp",
    )
    assert options.parse_ports("") == ()


@pytest.mark.parametrize("text", ["0", "65536", "http", "80/icmp", "-1"])
def test_parse_ports_refuses(text):
    with pytest.raises(ImageOptionError, match=r"^--port: "):
        options.parse_ports(text, what="--port")


def test_parse_env_pairs():
    assert options.parse_env_pairs(["A=1", "B=x=y", "C="]) == (("A", "1"), ("B", "x=y"), ("C", ""))
    # wercker's env option is one shell-split string
    assert options.parse_env_pairs("A=1 'B=two words'") == (("A", "1"), ("B", "two words"))


@pytest.mark.parametrize("item", ["NOEQUALS", "=value"])
def test_parse_env_pairs_refuses(item):
    with pytest.raises(ImageOptionError, match=f"^--env: '{item}' is not KEY=VALUE$"):
        options.parse_env_pairs([item], what="--env")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1700000000", 1700000000),
        ("2023-11-14T22:13:20Z", 1700000000),
        ("2023-11-15T00:13:20+02:00", 1700000000),
        ("2023-11-14T22:13:20.75Z", 1700000000),
    ],
)
def test_parse_created(text, expected):
    assert options.parse_created(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2023-11-14T22:13:20", "-5", "1969-12-31T00:00:00Z"])
def test_parse_created_refuses(text):
    with pytest.raises(ImageOptionError, match=r"^--created: "):
        options.parse_created(text, what="--created")


def test_parse_platform():
    assert options.parse_platform("linux/amd64") == Platform("linux", "amd64")
    assert options.parse_platform("linux/arm/v7") == Platform("linux", "arm", "v7")
    assert options.parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")


@pytest.mark.parametrize(
    "text", ["linux", "linux/amd65", "plan9/amd64", "linux/amd64/v9", "a/b/c/d"]
)
def test_parse_platform_refuses(text):
    with pytest.raises(ImageOptionError, match=r"^--platform: "):
        options.parse_platform(text, what="--platform")


def test_host_platform_is_known():
    host = options.host_platform()
    assert host.os == "linux" and host.architecture in options.KNOWN_ARCH


def test_parse_tags_splits_on_spaces_and_commas():
    assert options.parse_tags("v1, latest  abc123,v1") == ("v1", "latest", "abc123")
    assert options.parse_tags("", default=("latest",)) == ("latest",)
    assert options.parse_tags(["a b", "c"]) == ("a", "b", "c")


def test_parse_tags_refuses_garbage():
    with pytest.raises(ImageOptionError, match=r"^tag: 'v1!'"):
        options.parse_tags("v1!")


def test_docker_reference():
    assert options.check_docker_reference("quay.io/org/app:v1") == "quay.io/org/app:v1"
    assert options.check_docker_reference("localhost:5000/app") == "localhost:5000/app"
    with pytest.raises(ImageOptionError, match="not a docker reference"):
        options.check_docker_reference("App:v1")


def test_volumes_and_workdir_must_be_absolute():
    assert options.parse_volumes("/data, /cache /data") == ("/data", "/cache")
    with pytest.raises(ImageOptionError, match=r"^--volume: 'data' must be an absolute path$"):
        options.parse_volumes(["data"], what="--volume")
    with pytest.raises(ImageOptionError, match=r"^--workdir: "):
        options.parse_absolute("app", what="--workdir")


def test_errors_are_scratchd_errors_on_one_line():
    with pytest.raises(ScratchdError) as info:
        options.parse_command("echo 'x", what="cmd")
    assert "\n" not in str(info.value)


WERCKER_OPTIONS = {
    "cmd": "./app --port 5000",
    "entrypoint": '["/bin/sh", "-c"]',
    "env": "A=1 'B=two words'",
    "ports": "5000, 53/udp",
    "labels": "team=ci",
    "volumes": "/data, /cache",
    "working-dir": "/srv",
    "user": "65534",
    "stopsignal": "SIGINT",
}


def test_image_spec_maps_every_option_by_its_wercker_name():
    spec = options.image_spec(WERCKER_OPTIONS.get, what=str, created=7, revision="abc")
    assert spec == ImageSpec(
        cmd=("./app", "--port", "5000"),
        entrypoint=("/bin/sh", "-c"),
        env=(("A", "1"), ("B", "two words")),
        ports=("5000/tcp", "53/udp"),
        labels=(("team", "ci"),),
        volumes=("/data", "/cache"),
        workdir="/srv",
        user="65534",
        stop_signal="SIGINT",
        created=7,
        revision="abc",
    )
    assert set(WERCKER_OPTIONS) == set(options.IMAGE_OPTIONS)


def test_image_spec_of_no_options_is_the_empty_spec():
    assert options.image_spec(lambda option: "", what=str) == ImageSpec()
    assert options.image_spec(lambda option: None, what=str) == ImageSpec()


def test_image_spec_names_the_option_as_its_caller_spells_it():
    flags = {"ports": "--port"}
    with pytest.raises(ImageOptionError, match=r"^--port: invalid port 'x'"):
        options.image_spec({"ports": "x"}.get, what=lambda option: flags.get(option, option))
