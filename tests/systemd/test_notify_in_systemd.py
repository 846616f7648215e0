"""sd_notify and the journal handler under a real systemd, with the shipped hardening.

A small probe program stands in for the daemon's main loop; its unit is the
shipped scratchd.service with only ExecStart (and a short WatchdogSec)
changed, so this also proves Python, the notify socket and the journal
socket all work inside that sandbox.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.system

PROBE = """\
import logging, signal, sys, time
from scratchd.journal import install_handler
from scratchd.sdnotify import Notifier

install_handler(logging.INFO)  # JOURNAL_STREAM names our stderr: native journal
log = logging.getLogger("scratchd.probe")
notifier = Notifier.from_environ(unset=True)
flags = set()
signal.signal(signal.SIGHUP, lambda *_: flags.add("hup"))
signal.signal(signal.SIGTERM, lambda *_: flags.add("term"))
signal.signal(signal.SIGUSR1, lambda *_: flags.add("hang"))
fields = {"REPO": "probe-repo", "BUILD_ID": "7", "STEP": "compile"}
log.info("probe up, watchdog every %ss", notifier.watchdog_interval, extra=fields)
notifier.ready("watching 1 repo, 0 running, 0 queued")
while "term" not in flags:
    if "hup" in flags:
        flags.discard("hup")
        notifier.reloading()
        log.warning("config reloaded", extra=fields)
        notifier.ready("watching 2 repos, 0 running, 0 queued")
    if "hang" not in flags:
        notifier.watchdog()
    time.sleep(0.1)
notifier.stopping()
log.info("probe stopping", extra=fields)
sys.exit(0)
"""


@pytest.fixture(scope="module")
def probe(systemd_box):
    box = systemd_box
    box.write("/usr/local/lib/scratchd-probe.py", PROBE)
    box.sh(
        "sed -e 's#^ExecStart=.*#ExecStart=/opt/scratchd/bin/python "
        "/usr/local/lib/scratchd-probe.py#'"
        " -e 's#^WatchdogSec=.*#WatchdogSec=3s#'"
        " /etc/systemd/system/scratchd.service > /etc/systemd/system/scratchd-probe.service"
        " && systemctl daemon-reload && systemctl start scratchd-probe"
    )
    return box


def show(box, prop: str) -> str:
    return box.sh(f"systemctl show -P {prop} scratchd-probe").output.strip()


def test_ready_and_status_reach_systemd(probe):
    # Type=notify: `systemctl start` returned only after READY=1.
    assert show(probe, "ActiveState") == "active"
    assert show(probe, "StatusText") == "watching 1 repo, 0 running, 0 queued"
    assert show(probe, "User") == "scratchd"


def test_journal_fields_under_the_unit(probe):
    lines = probe.journal("-u", "scratchd-probe", "-o", "json", "REPO=probe-repo", "BUILD_ID=7")
    entries = [json.loads(line) for line in lines.splitlines()]
    first = entries[0]
    assert first["MESSAGE"].startswith("probe up, watchdog every 1.5s")
    assert (first["STEP"], first["PRIORITY"], first["SYSLOG_IDENTIFIER"]) == (
        "compile",
        "6",
        "scratchd",
    )
    assert first["_TRANSPORT"] == "journal"  # the native protocol, not stderr


def test_reload_is_acknowledged(probe):
    probe.sh("systemctl reload scratchd-probe")
    probe.wait(
        "systemctl show -P StatusText scratchd-probe | grep -q '2 repos'",
        10,
        "no READY after reload",
    )
    assert "config reloaded" in probe.journal(
        "-u", "scratchd-probe", "-p", "warning", "REPO=probe-repo"
    )


def test_hung_main_loop_is_restarted_by_the_watchdog(probe):
    before = int(show(probe, "NRestarts"))
    probe.sh("systemctl kill -s SIGUSR1 --kill-who=main scratchd-probe")
    probe.wait(
        f"[ $(systemctl show -P NRestarts scratchd-probe) -gt {before} ]"
        " && systemctl is-active -q scratchd-probe",
        30,
        "watchdog did not restart the hung probe",
    )
    assert "Watchdog timeout" in probe.journal("-u", "scratchd-probe", "-o", "cat")


def test_stop_is_clean(probe):
    probe.sh("systemctl stop scratchd-probe")
    assert show(probe, "Result") == "success"
    assert show(probe, "ActiveState") == "inactive"
