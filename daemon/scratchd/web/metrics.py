"""``/metrics``: Prometheus text computed from the state database at scrape time.

The web process holds no counters of its own: a custom collector turns the
rows the daemon wrote into counters, gauges and histograms on every scrape,
so the figures agree with the database by construction and survive restarts
of either process. Labels are bounded (repository, pipeline chain, result,
executor, registry, outcome); never a commit, branch or build id. Counters
shrink only when retention prunes rows, which Prometheus reads as a reset.
"""

from __future__ import annotations

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

from scratchd import __version__
from scratchd.web.settings import WebSettings
from scratchd.web.state import ReadOnlyState
from scratchd.web.views import daemon_alive

RESULTS = ("passed", "failed", "error", "cancelled")
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
PUSH_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OUTCOMES = ("uploaded", "existed", "mounted")


class StateCollector:
    """A ``prometheus_client`` collector over :class:`ReadOnlyState`."""

    def __init__(self, state: ReadOnlyState, settings: WebSettings) -> None:
        self.state, self.settings = state, settings

    def pipeline(self, repo: str) -> str:
        """A build runs its repository's pipeline chain: ``build+deploy``."""
        site = self.settings.repo(repo)
        return "+".join(site.pipelines) if site else ""

    def collect(self):
        info = InfoMetricFamily("scratchd_build", "scratchd version")
        info.add_metric([], {"version": __version__})
        yield info
        yield from self._builds()
        yield self._histogram(
            "scratchd_build_duration_seconds",
            "Run time of finished builds",
            "finished_at - started_at",
            "started_at IS NOT NULL AND finished_at IS NOT NULL"
            " AND status IN ('passed','failed','error','cancelled')",
            DURATION_BUCKETS,
        )
        yield self._histogram(
            "scratchd_queue_wait_seconds",
            "Time from queued to running",
            "started_at - created_at",
            "started_at IS NOT NULL",
            WAIT_BUCKETS,
        )
        yield self._histogram(
            "scratchd_trigger_latency_seconds",
            "Time from the watcher seeing a ref change to the build being queued",
            "created_at - seen_at",
            "seen_at IS NOT NULL",
            LATENCY_BUCKETS,
        )
        yield from self._load()
        yield from self._pushes()

    def _repos(self) -> list[str]:
        names = [r.name for r in self.settings.repos]
        return names + [n for n in self.state.repo_names() if n not in names]

    def _builds(self):
        started = CounterMetricFamily(
            "scratchd_builds_started", "Builds that started running", labels=["repo", "pipeline"]
        )
        finished = CounterMetricFamily(
            "scratchd_builds_finished",
            "Builds that finished, by result",
            labels=["repo", "pipeline", "result"],
        )
        last = GaugeMetricFamily(
            "scratchd_last_build_timestamp_seconds",
            "When the newest build of each result finished",
            labels=["repo", "result"],
        )
        counts = {
            (r["repo"], r["status"]): (r["n"], r["started"], r["last"])
            for r in self.state.query(
                "SELECT repo, status, count(*) AS n, sum(started_at IS NOT NULL) AS started,"
                " max(finished_at) AS last FROM builds GROUP BY repo, status"
            )
        }
        for repo in self._repos():
            pipe = self.pipeline(repo)
            runs = sum(v[1] or 0 for (r, _), v in counts.items() if r == repo)
            started.add_metric([repo, pipe], runs)
            for result in RESULTS:
                n, _, when = counts.get((repo, result), (0, 0, None))
                finished.add_metric([repo, pipe, result], n)
                if when is not None:
                    last.add_metric([repo, result], when)
        yield from (started, finished, last)

    def _histogram(self, name, doc, value, where, buckets) -> HistogramMetricFamily:
        sums = ", ".join(f"sum(v <= {float(b)!r})" for b in buckets)
        sql = (
            f"SELECT repo, {sums}, count(*), sum(v) FROM"  # noqa: S608 - constants only
            f" (SELECT repo, {value} AS v FROM builds WHERE {where}) GROUP BY repo"
        )
        rows = {r[0]: r for r in self.state.query(sql)}
        family = HistogramMetricFamily(name, doc, labels=["repo"])
        for repo in self._repos():
            row = rows.get(repo)
            counts = (
                [int(c or 0) for c in row[1 : len(buckets) + 2]]
                if row
                else [0] * (len(buckets) + 1)
            )
            pairs = [(str(float(b)), c) for b, c in zip(buckets, counts, strict=False)]
            pairs.append(("+Inf", counts[-1]))
            family.add_metric([repo], pairs, sum_value=float(row[-1] or 0) if row else 0.0)
        return family

    def _load(self):
        queued = self.state.query("SELECT count(*) FROM builds WHERE status='queued'")[0][0]
        running = self.state.query(
            "SELECT repo, count(*) FROM builds WHERE status='running' GROUP BY repo"
        )
        depth = GaugeMetricFamily("scratchd_queue_depth", "Builds waiting in the queue")
        depth.add_metric([], queued)
        yield depth
        per: dict[str, int] = {r.executor: 0 for r in self.settings.repos}
        for repo, n in running:
            ex = self.settings.executor_of(repo)
            per[ex] = per.get(ex, 0) + n
        busy = GaugeMetricFamily(
            "scratchd_builds_running", "Builds running now", labels=["executor"]
        )
        capacity = GaugeMetricFamily(
            "scratchd_executor_capacity", "Build slots of the daemon", labels=["executor"]
        )
        for ex, n in sorted(per.items()):
            busy.add_metric([ex], n)
            capacity.add_metric([ex], self.settings.capacity)
        yield from (busy, capacity)
        up = GaugeMetricFamily("scratchd_daemon_up", "1 when the daemon holds its state lock")
        up.add_metric([], int(daemon_alive(self.state.daemon_info(), self.state.dirs.root)))
        yield up
        yield from self._engines()

    def _engines(self):
        """The engine pool from the daemon's ``engines.json``: health and slots per engine."""
        up = GaugeMetricFamily(
            "scratchd_engine_up", "1 when the engine answered its last probe", labels=["engine"]
        )
        used = GaugeMetricFamily(
            "scratchd_engine_builds_running", "Build slots taken on the engine", labels=["engine"]
        )
        slots = GaugeMetricFamily(
            "scratchd_engine_capacity", "Build slots of the engine", labels=["engine"]
        )
        for e in self.state.engines():
            up.add_metric([e["name"]], 1 if e.get("up") else 0)
            used.add_metric([e["name"]], _number(e.get("used")))
            slots.add_metric([e["name"]], _number(e.get("capacity")))
        yield from (up, used, slots)

    def _pushes(self):
        rows = self.state.query(
            "SELECT registry, sum(uploaded_blobs), sum(uploaded_bytes), sum(existed_blobs),"
            " sum(existed_bytes), sum(mounted_blobs), sum(mounted_bytes) FROM pushes"
            " GROUP BY registry"
        )
        blobs = CounterMetricFamily(
            "scratchd_push_blobs", "Blobs pushed, by outcome", labels=["registry", "outcome"]
        )
        sizes = CounterMetricFamily(
            "scratchd_push_bytes",
            "Bytes of pushed blobs, by outcome",
            labels=["registry", "outcome"],
        )
        for row in rows:
            for i, outcome in enumerate(OUTCOMES):
                blobs.add_metric([row[0], outcome], row[1 + 2 * i] or 0)
                sizes.add_metric([row[0], outcome], row[2 + 2 * i] or 0)
        yield from (blobs, sizes)
        sums = ", ".join(f"sum(seconds <= {float(b)!r})" for b in PUSH_BUCKETS)
        hist = HistogramMetricFamily(
            "scratchd_push_duration_seconds", "Time one push took", labels=["registry"]
        )
        sql = f"SELECT registry, {sums}, count(*), sum(seconds) FROM pushes GROUP BY registry"  # noqa: S608
        for row in self.state.query(sql):
            counts = [int(c or 0) for c in row[1 : len(PUSH_BUCKETS) + 2]]
            pairs = [(str(float(b)), c) for b, c in zip(PUSH_BUCKETS, counts, strict=False)]
            pairs.append(("+Inf", counts[-1]))
            hist.add_metric([row[0]], pairs, sum_value=float(row[-1] or 0))
        yield hist


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def make_registry(state: ReadOnlyState, settings: WebSettings) -> CollectorRegistry:
    """One registry per app (no global default registry, no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, settings))
    return registry
