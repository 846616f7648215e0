"""Extra Docker engines, each on its own "host": a network namespace reached over a veth pair.

Each engine is a real ``dockerd`` started with ``nsenter --net=`` (not ``ip
netns exec``, which remounts /sys and breaks dockerd's cgroups), its own
``--data-root``/``--exec-root``/``--pidfile``, ``--bridge none``,
``--iptables=false``, listening on the namespace's address with
``--tlsverify`` and certificates made here. Box images come from the local
engine (``docker save | docker load``): no internet is involved.

Every wait is bounded; :meth:`EngineHost.close` kills the daemon and
deletes the namespace and link whatever state they reached.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import unavailable, wait_for

PORT = 2376


@dataclass
class Certs:
    """A CA, plus one server and one client certificate it signed (PEM files)."""

    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def make_certs(directory: Path, server_ips: list[str]) -> Certs:
    """Certificates the way the README tells operators to make them, with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path

    def sign(subject: str, key, issuer_key, *, ca=False, usage=None, ips=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("scratchd test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if ips:
            sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem(cert, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    return Certs(
        ca=pem(sign("scratchd test CA", ca_key, ca_key, ca=True), directory / "ca.pem"),
        client_cert=pem(
            sign("scratchd", client_key, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH),
            directory / "cert.pem",
        ),
        client_key=write_key(client_key, directory / "key.pem"),
        server_cert=pem(
            sign(
                "engine", server_key, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, ips=server_ips
            ),
            directory / "server-cert.pem",
        ),
        server_key=write_key(server_key, directory / "server-key.pem"),
    )


@dataclass
class EngineHost:
    """One dockerd in its own network namespace."""

    name: str
    netns: str
    host_if: str
    host_addr: str
    addr: str
    root: Path
    certs: Certs
    proc: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"tcp://{self.addr}:{PORT}"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    def endpoint(self, name: str | None = None):
        from scratchd.runner.engines import EngineEndpoint

        c = self.certs
        return EngineEndpoint(name or self.name, self.url, c.ca, c.client_cert, c.client_key)

    def client(self, timeout: float = 60):
        return self.endpoint().client(timeout)

    # -- lifecycle -------------------------------------------------------------

    def create_namespace(self) -> None:
        peer = self.host_if.replace("h", "n", 1)
        for cmd in (
            ["ip", "netns", "add", self.netns],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", peer],
            ["ip", "link", "set", peer, "netns", self.netns],
            ["ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "-n", self.netns, "addr", "add", f"{self.addr}/30", "dev", peer],
            ["ip", "-n", self.netns, "link", "set", peer, "up"],
            ["ip", "-n", self.netns, "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)

    def start(self, timeout: float = 60) -> None:
        """Start (or restart) the dockerd; returns once it answers over TLS."""
        c = self.certs
        self._log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - outlives this call
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/var/run/netns/{self.netns}",
                "dockerd",
                *("--data-root", str(self.root / "data")),
                *("--exec-root", str(self.root / "exec")),
                *("--pidfile", str(self.root / "docker.pid")),
                *("-H", self.url),
                *("-H", f"unix://{self.socket}"),  # for the ssh transport's forward
                "--tlsverify",
                *("--tlscacert", str(c.ca)),
                *("--tlscert", str(c.server_cert)),
                *("--tlskey", str(c.server_key)),
                *("--bridge", "none"),
                "--iptables=false",
                "--ip6tables=false",
            ],
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        wait_for(self._answers, timeout, f"dockerd of engine {self.name}")

    def _answers(self) -> bool:
        client = self.client(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def kill(self) -> None:
        """``kill -9`` the engine's dockerd and containerd (its whole process group)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def close(self) -> None:
        self.stop()
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
        shutil.rmtree(self.root / "data", ignore_errors=True)

    @contextlib.contextmanager
    def sshd(self) -> Iterator[tuple[Path, Path]]:
        """An sshd in this host's namespace; yields (client identity, known_hosts)."""
        if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
            unavailable("sshd is not installed (apt-get install openssh-server)")
        d = self.root / "ssh"
        d.mkdir(exist_ok=True)
        for key in ("host", "id"):
            if not (d / key).exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True
                )
        (d / "authorized_keys").write_text((d / "id.pub").read_text())
        (d / "known_hosts").write_text(f"{self.addr} {(d / 'host.pub').read_text()}")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        options = {
            "HostKey": d / "host",
            "ListenAddress": f"{self.addr}:22",
            "AuthorizedKeysFile": d / "authorized_keys",
            "StrictModes": "no",
            "PidFile": d / "sshd.pid",
            "PermitRootLogin": "prohibit-password",
            "AllowStreamLocalForwarding": "yes",
            "UsePAM": "no",
        }
        args = [x for k, v in options.items() for x in ("-o", f"{k}={v}")]
        netns = f"--net=/var/run/netns/{self.netns}"
        proc = subprocess.Popen(
            ["nsenter", netns, "/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null", *args],
            stdout=subprocess.DEVNULL,
            stderr=open(d / "sshd.log", "ab"),  # noqa: SIM115 - the child keeps it
            start_new_session=True,
        )
        try:
            wait_for(lambda: (d / "sshd.pid").exists(), 20, "sshd")
            yield d / "id", d / "known_hosts"
        finally:
            proc.terminate()
            proc.wait(10)

    def load_image(self, local_client, image: str) -> None:
        """``docker save`` from the local engine, ``docker load`` into this one."""
        data = b"".join(local_client.api.get_image(image))  # by name: the tag goes along
        client = self.client(120)
        try:
            client.images.load(data)
        finally:
            client.close()


def _prerequisites() -> None:
    if os.geteuid() != 0:
        unavailable("engine hosts need root (network namespaces)")
    for tool in ("ip", "nsenter", "dockerd"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed")


@contextlib.contextmanager
def engine_hosts(count: int, base: Path, images: list[str], local_client) -> Iterator[list]:
    """``count`` engines in namespaces, images loaded; all torn down afterwards."""
    _prerequisites()
    tag = secrets.token_hex(2)
    net = int(tag, 16) % 200 + 20  # 10.213.<net>.0/24, split into /30 per engine
    addrs = [(f"10.213.{net}.{4 * i + 1}", f"10.213.{net}.{4 * i + 2}") for i in range(count)]
    certs = make_certs(base / "certs", [a for _, a in addrs])
    hosts = [
        EngineHost(
            name=f"e{i + 1}",
            netns=f"scratchd-{tag}-{i + 1}",
            host_if=f"sdh{tag}{i + 1}",
            host_addr=host_addr,
            addr=addr,
            root=base / f"e{i + 1}",
            certs=certs,
        )
        for i, (host_addr, addr) in enumerate(addrs)
    ]
    try:
        for host in hosts:
            host.root.mkdir(parents=True, exist_ok=True)
            host.create_namespace()
            host.start()
        for host in hosts:
            for image in images:
                host.load_image(local_client, image)
    except (subprocess.CalledProcessError, TimeoutError) as exc:
        for host in hosts:
            host.close()
        unavailable(f"cannot start engine hosts: {exc}")
    try:
        yield hosts
    finally:
        for host in hosts:
            host.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    """``wait_for`` that also works with a predicate that raises while not ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not true after {timeout}s")
