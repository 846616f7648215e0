"""Services next to the pipeline container: reachable by name, wercker's link variables."""

from __future__ import annotations

import secrets

import pytest

from scratchd.errors import ImageOptionError
from scratchd.pipeline.plan import Box
from scratchd.runner.docker_services import command_args, exposed_ports, link_env, service_alias
from tests.runner.conftest import docker_leftovers, run_step

WEB_CMD = (
    "sh -c 'mkdir -p /www && echo hello-from-$SERVICE_COLOR > /www/index.html"
    " && exec httpd -f -p 8080 -h /www'"
)


@pytest.fixture(scope="module")
def service_image(docker_client, busybox_box):
    """The busybox box plus ``EXPOSE 8080`` and an ENV, like a real service image."""
    ref = f"scratchd-test/busybox-service:{secrets.token_hex(4)}"
    repo, tag = ref.split(":")
    container = docker_client.containers.create(busybox_box, command=["true"])
    try:
        container.commit(
            repository=repo, tag=tag, changes=["EXPOSE 8080", "ENV SERVICE_COLOR=blue"]
        )
    finally:
        container.remove(force=True)
    yield ref
    docker_client.images.remove(ref, force=True)


def test_service_is_reachable_by_name_with_link_variables(
    new_docker_backend, make_pipeline_job, busybox_box, service_image, docker_client, docker_labels
):
    web = Box(id=service_image, name="web", cmd=WEB_CMD)
    pinger = Box(id=busybox_box, cmd="sleep 1000", name="ping-er")
    b = new_docker_backend()
    b.setup(make_pipeline_job(box=Box(id=busybox_box), services=(web, pinger)))
    script = (
        "i=0; until wget -q -O - http://web:8080/; do i=$((i+1)); [ $i -lt 50 ] || exit 1;"
        " sleep 0.1; done\n"
        'echo "$WEB_PORT|$WEB_PORT_8080_TCP|$WEB_PORT_8080_TCP_PORT|$WEB_PORT_8080_TCP_PROTO"\n'
        'echo "$WEB_PORT_8080_TCP_ADDR|$WEB_NAME|$WEB_ENV_SERVICE_COLOR"\n'
        "ping -c1 -W2 ping-er >/dev/null\n"
        'echo "pinger=${PING_ER_NAME}"\n'
    )
    code, lines = run_step(b, script, command_timeout=30)
    assert code == 0, lines.items
    out = lines.of("stdout")
    assert out[0] == "hello-from-blue"
    ip = docker_client.containers.get(b.container.name + "-web").attrs["NetworkSettings"][
        "Networks"
    ][b.container.name]["IPAddress"]
    url = f"tcp://{ip}:8080"
    assert out[1] == f"{url}|{url}|8080|tcp"
    assert out[2] == f"{ip}|/{b.container.name}/web|blue"
    assert out[-1] == f"pinger=/{b.container.name}/ping-er"
    assert len(docker_leftovers(docker_client, docker_labels)) == 4  # 3 containers + network
    b.teardown()
    assert docker_leftovers(docker_client, docker_labels) == []


def test_service_with_a_missing_image_fails_setup_and_leaves_nothing(
    new_docker_backend, make_pipeline_job, busybox_box, docker_client, docker_labels
):
    from scratchd.errors import BackendError

    b = new_docker_backend()
    ok = Box(id=busybox_box, name="first", cmd="sleep 1000")
    missing = Box(id=f"scratchd-test/absent-{secrets.token_hex(4)}", name="db")
    with pytest.raises(BackendError, match="absent-"):
        b.setup(make_pipeline_job(box=Box(id=busybox_box), services=(ok, missing)))
    assert docker_leftovers(docker_client, docker_labels)  # the first service and the network
    b.teardown()
    assert docker_leftovers(docker_client, docker_labels) == []


# -- pure parts -------------------------------------------------------------


def test_alias_comes_from_name_or_image():
    assert service_alias(Box(id="mongo:3.2")) == "mongo"
    assert service_alias(Box(id="quay.io/org/postgres@sha256:ab")) == "postgres"
    assert service_alias(Box(id="localhost:5000/redis")) == "redis"
    assert service_alias(Box(id="mysql", name="db")) == "db"


def test_ports_take_the_container_side():
    box = Box(id="x", ports=("8080", "5353/udp", "9000:80", " 1234:443/tcp "))
    assert exposed_ports(box) == [(8080, "tcp"), (5353, "udp"), (80, "tcp"), (443, "tcp")]


def test_link_env_matches_docker_links():
    env = link_env(
        "my-db", "pipe", "10.0.0.5", ["6379/tcp", "53/udp"], ["A=1", "PATH=/bin", "EMPTY="]
    )
    assert env == {
        "MY_DB_NAME": "/pipe/my-db",
        "MY_DB_PORT": "udp://10.0.0.5:53",
        "MY_DB_PORT_53_UDP": "udp://10.0.0.5:53",
        "MY_DB_PORT_53_UDP_ADDR": "10.0.0.5",
        "MY_DB_PORT_53_UDP_PORT": "53",
        "MY_DB_PORT_53_UDP_PROTO": "udp",
        "MY_DB_PORT_6379_TCP": "tcp://10.0.0.5:6379",
        "MY_DB_PORT_6379_TCP_ADDR": "10.0.0.5",
        "MY_DB_PORT_6379_TCP_PORT": "6379",
        "MY_DB_PORT_6379_TCP_PROTO": "tcp",
        "MY_DB_ENV_A": "1",
        "MY_DB_ENV_PATH": "/bin",
        "MY_DB_ENV_EMPTY": "",
    }
    assert link_env("plain", "pipe", "10.0.0.6", [], []) == {"PLAIN_NAME": "/pipe/plain"}


def test_box_cmd_follows_the_push_steps_cmd_rule():
    assert command_args("redis-server --save '' --appendonly no") == [
        "redis-server",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    assert command_args('["/bin/sh", "-c", "a b"]') == ["/bin/sh", "-c", "a b"]
    assert command_args("  ") is None
    with pytest.raises(ImageOptionError, match=r"^service 'db' cmd: cannot split"):
        command_args("echo 'unclosed", what="service 'db' cmd")
