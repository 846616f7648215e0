"""The shared build preparation: read wercker.yml, feed the build's one masker, compile."""

from __future__ import annotations

import pytest

from scratchd.errors import PipelineError
from scratchd.models import CommitInfo
from scratchd.prepare import prepare_build
from scratchd.redact import Redactor

COMMIT = CommitInfo(sha="cd" * 20, branch="main", repo="cities", commit_time=1_700_000_000)

YML = """\
build:
  steps:
    - script:
        code: echo $TOKEN
deploy:
  steps:
    - internal/docker-scratch-push:
        repository: 127.0.0.1:5000/app
        password: literal-pass-42
"""


def prepare(tmp_path, masker, yml=YML, **kw):
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    if yml is not None:
        (source / "wercker.yml").write_text(yml)
    return prepare_build(
        source=source,
        pipeline_file="wercker.yml",
        shown="cities:wercker.yml",
        missing="cities:wercker.yml: no such file",
        commit=COMMIT,
        masker=masker,
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
        **kw,
    )


def test_the_masker_learns_secrets_file_values_and_password_options(tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=file-token-123\n")
    masker = Redactor()
    plan = prepare(tmp_path, masker, secrets_file=secrets, build_id="9")
    assert masker.redact("file-token-123 literal-pass-42") == "*** ***"
    assert plan.build_id == "9" and plan.pipelines[0].env["TOKEN"] == "file-token-123"


def test_the_masker_knows_the_secrets_even_when_compiling_fails(tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=file-token-123\n")
    masker = Redactor()
    with pytest.raises(PipelineError, match=r"^cities:wercker\.yml:2:"):
        prepare(tmp_path, masker, yml="build:\n  steps: nope\n", secrets_file=secrets)
    assert masker.redact("file-token-123") == "***"


def test_a_commit_without_the_file_is_the_callers_message(tmp_path):
    with pytest.raises(PipelineError, match=r"^cities:wercker\.yml: no such file$"):
        prepare(tmp_path, Redactor(), yml=None)
