"""Benchmark: pushing to a local docker-registry, against docker and against curl.

One run starts Debian's docker-registry on a loopback port and measures,
``--reps`` times each (default 5) with fresh file contents before every
single measurement, so no cache or content-addressed shortcut can help:

(a) seed case, a static Go HTTP server of a few MB (fresh 32-byte nonce per copy):
    1. ``scratchd bake DIR --push`` as a command (default gzip level);
    2. the same as an in-process library call (``bake`` + ``RegistryClient.push``),
       how the daemon does it, at the default gzip level and at level 6;
    3. ``docker build`` (FROM scratch + COPY) + ``docker push`` to the same registry;
    4. the floor: ``tar -c | gzip -6 | sha256sum`` plus two ``curl`` requests
       (POST to open an upload, PUT of the blob) — level 6 like (2, level 6).
(b) re-push of an unchanged image: requests and body bytes the client sent.
(c) a 200 MB incompressible layer: our upload throughput vs ``curl -T`` of the
    same bytes to an upload URL of the same registry (different repositories).
(d) seed case with and without attestations (SPDX SBOM + SLSA provenance, an
    image index and the fallback referrers tag, as the daemon pushes by
    default), interleaved; also a row of (a). Measured as a first push (new
    client, new repository: ``scratchd bake --push``) and as the daemon's next
    commit (one long-lived client, the same repository). Prints each variant's
    split into bake / attest / push, the min-max of the totals and the
    with/without ratio (of the medians, and per back-to-back pair with its
    quartiles).

Prints medians and the ratios the issue sets targets for. Usage::

    python bench/push.py [--reps 5] [--large-mb 200] [--large-reps 3] [--cases a,b,c,d]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

import requests
from tests.support.services import run_registry

from registry_floor import cores, registry_cpu_seconds, replay_attested, replay_plain
from scratchd.image.attest import attest_image
from scratchd.image.build import DEFAULT_GZIP_LEVEL, bake
from scratchd.image.provenance import ProvenanceInputs
from scratchd.image.types import Blob, Image
from scratchd.models import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    Descriptor,
    ImageSpec,
)
from scratchd.registry.client import RegistryClient
from scratchd.registry.credentials import CredentialStore
from scratchd.registry.http import HttpClient
from scratchd.registry.reference import parse_repository
from seed import seed_maker  # bench/seed.py: this script's directory is on sys.path

MAX_SECONDS = 900  # the whole run stops measuring after this


class CountingHttp(HttpClient):
    """Counts requests and request-body bytes the client sends (for case b)."""

    def __init__(self) -> None:
        super().__init__()
        self.count, self.body_bytes, self.methods = 0, 0, []

    def request(self, method, url, *, headers=None, body=None, verify=True):
        self.count += 1
        self.methods.append(method)
        if callable(body):
            opened = body()
            self.body_bytes += len(opened)
            body = lambda: opened  # noqa: E731 - the one stream, sent once
        elif body is not None:
            self.body_bytes += len(body)
        return super().request(method, url, headers=headers, body=body, verify=verify)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--large-reps", type=int, default=3)
    parser.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    args = parser.parse_args()
    os.environ.setdefault("DOCKER_HOST", "unix:///run/scratchd-test/docker.sock")
    deadline = time.monotonic() + MAX_SECONDS
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-push-") as tmp:
        work = Path(tmp)
        make_seed = seed_maker(work)
        with run_registry(work / "registry") as registry:
            host = registry.host
            print(f"registry {host}; seed binary {(work / 'app').stat().st_size / 1e6:.1f} MB")
            cases = set(args.cases.split(","))
            if "a" in cases:
                _report_a(_case_a(work, host, make_seed, args.reps, deadline))
            if "b" in cases:
                _case_b(work, host, make_seed)
            if "c" in cases:
                _case_c(work, host, args.large_mb << 20, args.large_reps, deadline)
            if "d" in cases:
                _case_d(work, registry, make_seed, max(args.reps, 9), deadline)
    return 0


# -- (a) seed case --------------------------------------------------------------


def _case_a(work: Path, host: str, make_seed, reps: int, deadline: float) -> dict:
    methods = {
        "(1) scratchd bake --push (command)": _cli,
        f"(2) library bake+push, gzip -{DEFAULT_GZIP_LEVEL}": lambda t, h, r: _library(
            t, h, r, DEFAULT_GZIP_LEVEL
        ),
        "(2) library bake+push, gzip -6": lambda t, h, r: _library(t, h, r, 6),
        f"(2) ... + SBOM + provenance, gzip -{DEFAULT_GZIP_LEVEL}": lambda t, h, r: _library(
            t, h, r, DEFAULT_GZIP_LEVEL, attest=True
        ),
        "(3) docker build + docker push": _docker,
        "(4) floor: tar|gzip -6|sha256 + 2 curl": _floor,
    }
    results: dict[str, list[float]] = {name: [] for name in methods}
    _library(make_seed(work / "warm"), host, "warm/up", 6)  # imports + connection warm-up
    for rep in range(reps):
        for name, method in methods.items():
            if time.monotonic() > deadline:
                break
            tree = make_seed(work / f"t-{uuid.uuid4().hex[:8]}")
            results[name].append(method(tree, host, f"bench/r{rep}-{uuid.uuid4().hex[:6]}"))
            shutil.rmtree(tree)
    return results


def _cli(tree: Path, host: str, repo: str) -> float:
    argv = [sys.executable, "-m", "scratchd", "bake", str(tree), "--cmd", "/app"]
    started = time.perf_counter()
    subprocess.run([*argv, "--push", f"{host}/{repo}"], check=True, capture_output=True)
    return time.perf_counter() - started


def _library(tree: Path, host: str, repo: str, level: int, attest: bool = False) -> float:
    return sum(_library_phases(tree, host, repo, level, attest))


def _library_phases(
    tree: Path, host: str, repo: str, level: int, attest: bool, client: RegistryClient | None = None
) -> tuple[float, float, float]:
    """(bake, attest, push) seconds; with ``attest`` the bake records its files for the SBOM.

    ``client``: the daemon's long-lived one; None: a new one, as ``scratchd bake --push``.
    """
    blobs = tree.parent / f"blobs-{tree.name}"
    started = time.perf_counter()
    image = bake(tree, ImageSpec(cmd=("/app",)), blobs, gzip_level=level, inventory=attest)
    baked = time.perf_counter()
    if attest:
        inputs = ProvenanceInputs(repository="bench", commit="0" * 40)
        image = attest_image(image, inputs)  # as the daemon and bake do
    attested = time.perf_counter()
    client = client or RegistryClient(CredentialStore())
    client.push(image, parse_repository(f"{host}/{repo}"), ["latest"])
    pushed = time.perf_counter()
    shutil.rmtree(blobs)
    return baked - started, attested - baked, pushed - attested


def _docker(tree: Path, host: str, repo: str) -> float:
    (tree.parent / f"{tree.name}.Dockerfile").write_text(
        'FROM scratch\nCOPY app /app\nCMD ["/app"]\n'
    )
    tag = f"{host}/{repo}:latest"
    started = time.perf_counter()
    dockerfile = str(tree.parent / f"{tree.name}.Dockerfile")
    subprocess.run(["docker", "build", "-q", "-f", dockerfile, "-t", tag, str(tree)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["docker", "push", "-q", tag], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    return elapsed


def _floor(tree: Path, host: str, repo: str) -> float:
    layer = tree.parent / f"{tree.name}.tgz"
    script = (
        f'digest=$(tar -cf - -C "{tree}" . | gzip -6 | tee "{layer}" | sha256sum | cut -d" " -f1)\n'
        f'loc=$(curl -sS -o /dev/null -w "%{{redirect_url}}%header{{location}}" '
        f'-X POST "http://{host}/v2/{repo}/blobs/uploads/")\n'
        'case "$loc" in /*) loc="http://' + host + '$loc";; esac\n'
        'case "$loc" in *\\?*) sep="&";; *) sep="?";; esac\n'
        'curl -sSf -o /dev/null -T "' + str(layer) + '" "${loc}${sep}digest=sha256:${digest}"\n'
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True)
    return time.perf_counter() - started


def _report_a(results: dict[str, list[float]]) -> None:
    med = {name: statistics.median(v) for name, v in results.items() if v}
    docker = med["(3) docker build + docker push"]
    floor = med["(4) floor: tar|gzip -6|sha256 + 2 curl"]
    reps = min(len(v) for v in results.values())
    print(f"\n(a) seed case, median of {reps} runs (fresh binary each run)")
    print(f"{'method':<42} {'median s':>9} {'docker/x':>9} {'x/floor':>8}")
    for name, value in med.items():
        print(f"{name:<42} {value:>9.3f} {docker / value:>9.2f} {value / floor:>8.2f}")
    print("targets: (1) docker/x >= 2.0; (2, gzip -6) x/floor <= 1.3")


# -- (b) re-push ------------------------------------------------------------------


def _case_b(work: Path, host: str, make_seed) -> None:
    tree = make_seed(work / "repush")
    image = bake(tree, ImageSpec(cmd=("/app",)), work / "repush-blobs")
    ref = parse_repository(f"{host}/bench/repush")
    RegistryClient(CredentialStore()).push(image, ref, ["latest"])
    session = CountingHttp()
    result = RegistryClient(CredentialStore(), http=session).push(image, ref, ["latest"])
    blob_bytes = session.body_bytes - len(image.manifest)
    print("\n(b) re-push of an unchanged image (fresh client, nothing cached)")
    print(f"{'requests':<28} {session.count} ({', '.join(session.methods)})")
    print(f"{'blob bytes sent':<28} {blob_bytes}")
    print(f"{'bytes_uploaded (result)':<28} {result.bytes_uploaded}")
    print(f"{'blobs':<28} {len(image.blobs())}; target: 1 HEAD per blob + ping + 1 manifest PUT")


# -- (c) large layer --------------------------------------------------------------


def _case_c(work: Path, host: str, size: int, reps: int, deadline: float) -> None:
    ours, curls = [], []
    for rep in range(reps):
        if time.monotonic() > deadline:
            break
        path = work / "large.bin"
        with open(path, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        digest = "sha256:" + _sha256_file(path)
        # Alternate who goes first, and flush the previous upload's dirty pages,
        # so neither side pays for the other's disk writes.
        runs = [(curls, _curl_upload, "curl"), (ours, _our_upload, "ours")]
        for times, upload, name in runs if rep % 2 == 0 else reversed(runs):
            os.sync()
            times.append(upload(host, f"bench/{name}{rep}", path, digest, size))
        path.unlink()
    mb = size / 1e6
    ours_rate, curl_rate = mb / statistics.median(ours), mb / statistics.median(curls)
    print(f"\n(c) {mb:.0f} MB incompressible layer, median of {len(ours)} uploads")
    print(f"{'method':<28} {'median s':>9} {'MB/s':>8}")
    print(f"{'scratchd client':<28} {statistics.median(ours):>9.2f} {ours_rate:>8.1f}")
    print(f"{'curl -T':<28} {statistics.median(curls):>9.2f} {curl_rate:>8.1f}")
    print(f"time ratio scratchd/curl: {statistics.median(ours) / statistics.median(curls):.2f}"
          " (target <= 1.2)")  # fmt: skip


def _our_upload(host: str, repo: str, path: Path, digest: str, size: int) -> float:
    """A whole public-API push of a config + the large layer; the layer dominates."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_desc = Descriptor(
        DOCKER_CONFIG, "sha256:" + hashlib.sha256(config).hexdigest(), len(config)
    )
    layer = Descriptor(DOCKER_LAYER_GZIP, digest, size)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": config_desc.to_json(), "layers": [layer.to_json()],
    }).encode()  # fmt: skip
    image = Image(manifest, DOCKER_MANIFEST, Blob(config_desc, data=config), (Blob(layer, path),))
    started = time.perf_counter()
    RegistryClient(CredentialStore()).push(image, parse_repository(f"{host}/{repo}"), ["latest"])
    return time.perf_counter() - started


def _curl_upload(host: str, repo: str, path: Path, digest: str, size: int) -> float:
    response = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=30)
    location = requests.compat.urljoin(response.url, response.headers["Location"])
    sep = "&" if "?" in location else "?"
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", "/dev/null", "-T", str(path),
                    f"{location}{sep}digest={digest}"], check=True)  # fmt: skip
    return time.perf_counter() - started


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- (d) attestations -------------------------------------------------------------


def _case_d(work: Path, registry, make_seed, reps: int, deadline: float) -> None:
    """Same seed, fresh bytes each run, on/off alternating so drift hits both alike.

    Twice: as ``scratchd bake --push`` does it (a new client and a new repository
    per push: ping, fresh connections, nothing known), then as the daemon does it
    (one long-lived client per variant, each pushing every commit to its one
    repository: connections kept, blobs it put before are HEADed or mounted).
    Then the registry's own share (see bench/registry_floor.py).
    """
    first = _pairs(work, registry, make_seed, reps, deadline, lambda attest: None, None)
    _report_d("a first push: new client, new repository", first)
    clients = {attest: RegistryClient(CredentialStore()) for attest in (False, True)}
    _pairs(work, registry, make_seed, 1, deadline, clients.get, "daemon")  # ping, connections
    daemon = _pairs(work, registry, make_seed, reps, deadline, clients.get, "daemon")
    _report_d("the daemon's next commit: one client, same repository", daemon)
    _report_floor(daemon, _replays(work, registry, make_seed, reps, deadline))


Phases = tuple[float, float, float, float]  # bake, attest, push, the registry's CPU


def _pairs(work, registry, make_seed, reps, deadline, client_for, repository):
    """Phases per run of each variant; ``repository`` None: a new one each."""
    runs: dict[bool, list[Phases]] = {False: [], True: []}
    for rep in range(reps):
        for attest in (False, True) if rep % 2 == 0 else (True, False):
            if time.monotonic() > deadline:
                break
            tree = make_seed(work / f"d-{uuid.uuid4().hex[:8]}")
            fresh = f"bench/d{rep}-{uuid.uuid4().hex[:6]}"
            repo = (
                f"bench/{repository}-{'attested' if attest else 'plain'}" if repository else fresh
            )
            cpu = registry_cpu_seconds(registry.process.pid)
            phases = _library_phases(
                tree, registry.host, repo, DEFAULT_GZIP_LEVEL, attest, client_for(attest)
            )
            runs[attest].append((*phases, registry_cpu_seconds(registry.process.pid) - cpu))
            shutil.rmtree(tree)
    return runs


def _report_d(title: str, runs: dict[bool, list[Phases]]) -> None:
    n = min(len(runs[False]), len(runs[True]))
    print(f"\n(d) seed case bake+push with and without attestations, {title}, median of {n}")
    print(f"{'method':<46} {'bake':>7} {'attest':>7} {'push':>7} {'total':>7} {'min-max':>13}"
          f" {'registry CPU':>13}")  # fmt: skip
    totals = {}
    for attest, label in ((False, "without (plain manifest)"),
                          (True, "with SBOM + provenance (index, fallback tag)")):  # fmt: skip
        phases = [statistics.median(p[i] for p in runs[attest]) for i in range(4)]
        total = [sum(p[:3]) for p in runs[attest]]
        totals[attest] = statistics.median(total)
        print(f"{label:<46} {phases[0]:>7.3f} {phases[1]:>7.3f} {phases[2]:>7.3f} "
              f"{totals[attest]:>7.3f} {min(total):>6.3f}-{max(total):.3f} "
              f"{phases[3]:>13.3f}")  # fmt: skip
    # pairs run back to back, so their ratios cancel most of the machine's drift
    pairs = sorted(sum(a[:3]) / sum(p[:3]) for p, a in zip(runs[False], runs[True], strict=False))
    print(f"ratio with/without: {totals[True] / totals[False]:.3f} of medians; "
          f"per pair median {statistics.median(pairs):.3f} "
          f"(quartiles {pairs[len(pairs) // 4]:.3f}-{pairs[3 * len(pairs) // 4]:.3f})")  # fmt: skip
    print(f"extra time: {100 * (totals[True] / totals[False] - 1):+.1f}% (target < 10%)")


def _replays(work, registry, make_seed, reps, deadline) -> dict[bool, list[float]]:
    """Seconds of the minimal client's replay of each variant's requests (same repository)."""
    times: dict[bool, list[float]] = {False: [], True: []}
    with ThreadPoolExecutor(16) as pool:
        for rep in range(reps + 1):  # the first pair puts the empty config: not counted
            for attest in (False, True) if rep % 2 == 0 else (True, False):
                if time.monotonic() > deadline:
                    break
                tree = make_seed(work / f"f-{uuid.uuid4().hex[:8]}")
                blobs = tree.parent / f"blobs-{tree.name}"
                image = bake(tree, ImageSpec(cmd=("/app",)), blobs, inventory=attest)
                repo = f"bench/floor-{'attested' if attest else 'plain'}"
                started = time.perf_counter()
                if attest:
                    inputs = ProvenanceInputs(repository="bench", commit="0" * 40)
                    replay_attested(registry.host, repo, attest_image(image, inputs), pool)
                else:
                    replay_plain(registry.host, repo, image, pool)
                if rep:
                    times[attest].append(time.perf_counter() - started)
                shutil.rmtree(tree)
                shutil.rmtree(blobs)
    return times


def _report_floor(daemon: dict[bool, list[Phases]], replays: dict[bool, list[float]]) -> None:
    """The least extra any client could reach against this registry on this machine."""
    med = {a: [statistics.median(p[i] for p in daemon[a]) for i in range(4)] for a in daemon}
    plain_total = sum(med[False][:3])
    bake_extra = med[True][0] + med[True][1] - med[False][0] - med[False][1]
    cpu_extra = med[True][3] - med[False][3]
    replay = {a: statistics.median(t) for a, t in replays.items()}
    replay_extra = replay[True] - replay[False]
    # the registry's extra CPU cannot take less wall time than spread over every core,
    # nor can the extra requests go faster than a client that does nothing else sends them
    floor = bake_extra + max(cpu_extra / cores(), replay_extra)
    print(f"\n(d) the registry's share of the daemon's next commit, median of {len(replays[True])}")
    print(f"{'':<46} {'plain':>8} {'attested':>9} {'extra':>8}")
    print(f"{'registry CPU per push (all its threads)':<46} {med[False][3]:>8.3f} "
          f"{med[True][3]:>9.3f} {cpu_extra:>+8.3f}")  # fmt: skip
    print(f"{'same requests, minimal client, no bake':<46} {replay[False]:>8.3f} "
          f"{replay[True]:>9.3f} {replay_extra:>+8.3f}")  # fmt: skip
    print(f"{'bake + attest (SBOM hashes, documents)':<46} {med[False][0] + med[False][1]:>8.3f} "
          f"{med[True][0] + med[True][1]:>9.3f} {bake_extra:>+8.3f}")  # fmt: skip
    print(
        f"least extra any client can reach here: {floor:.3f} s = "
        f"{100 * floor / plain_total:+.1f}% of the plain bake+push ({plain_total:.3f} s; "
        f"bake extra + max(registry CPU extra / {cores()} cores, replay extra))"
    )


# -- inputs ------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
