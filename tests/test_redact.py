"""The masker: Secret or str values, multi-line secrets, a daemon-wide parent."""

from __future__ import annotations

import threading

from scratchd.models import MIN_SECRET_LENGTH, Secret
from scratchd.redact import Masker, Redactor


def test_masks_secrets_and_plain_values_longest_first():
    m = Masker([Secret("abc"), "abcdef-longer"])
    assert m.redact("x abcdef-longer y abc") == "x *** y ***"
    assert Redactor is Masker  # the name the rest of the code base uses


def test_every_line_of_a_multi_line_secret_is_masked():
    key = "-----BEGIN KEY-----\r\nMIIEow-body-line\n-----END KEY-----"
    m = Masker([Secret(key)])
    assert m.redact(f"key: {key}") == "key: ***"  # the whole value at once
    printed = [m.redact(line) for line in key.replace("\r", "").split("\n")]
    assert printed == ["***", "***", "***"]  # and each line, as a step prints it


def test_values_too_short_to_mask_are_ignored():
    m = Masker(["x" * (MIN_SECRET_LENGTH - 1), "", Secret("on")])
    assert not m and m.redact("on xx") == "on xx"
    m = Masker([Secret("long-line\nab")])  # a short line of a long secret: not on its own
    assert m.redact("ab") == "ab" and m.redact("long-line") == "***"


def test_a_build_masker_sees_what_its_parent_learns_later():
    daemon = Masker(["daemon-pw-1"])
    build = Masker([Secret("build-secret")], parents=(daemon,))
    assert build.redact("daemon-pw-1 build-secret") == "*** ***"
    daemon.add(Secret("rotated-pw-2"))  # a password file re-read mid-build
    assert build.redact("now rotated-pw-2") == "now ***"
    assert daemon.redact("build-secret") == "build-secret"  # a build's secrets stay its own


def test_adding_while_masking_from_other_threads():
    m = Masker()
    values = [f"secret-{n:04d}" for n in range(200)]
    adder = threading.Thread(target=lambda: [m.add(v) for v in values])
    adder.start()
    while adder.is_alive():
        m.redact("secret-0001 and secret-0199")
    adder.join()
    assert m.redact(" ".join(values)) == " ".join(["***"] * 200)
