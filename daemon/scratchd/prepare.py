"""Preparing a build from an exported commit: the one path the daemon and ``scratchd build`` share.

Reads the commit's wercker.yml and the repository's secrets file, feeds the
build's secret masker, and compiles everything into a
:class:`~scratchd.pipeline.buildplan.BuildPlan`. The masker is made by the
caller when the build starts and learns the secrets *before* compiling, so
even a compile error that quotes a value is masked.
"""

from __future__ import annotations

from pathlib import Path

from scratchd.errors import PipelineError
from scratchd.models import CommitInfo
from scratchd.pipeline.buildplan import BuildPlan
from scratchd.pipeline.compile import CompileInput, compile_build
from scratchd.redact import Redactor


def prepare_build(
    *,
    source: Path,
    pipeline_file: str,
    shown: str,
    missing: str,
    commit: CommitInfo,
    masker: Redactor,
    secrets_file: Path | None = None,
    **options,
) -> BuildPlan:
    """Compile ``source/pipeline_file`` for ``commit``; ``options`` go to CompileInput.

    ``shown`` is the file's name in errors (the repository's, not our copy);
    ``missing`` is the error when the commit has no such file.
    """
    from scratchd.pipeline.parse import decode

    path = source / pipeline_file
    if not path.is_file():
        raise PipelineError(missing)
    secrets = _secrets(secrets_file)
    masker.add(*secrets.values())
    text = decode(path.read_bytes(), shown)
    plan = compile_build(
        CompileInput(
            text=text, path=shown, commit=commit, source=source, secrets=secrets, **options
        )
    )
    masker.add(*plan.secret_values())
    return plan


def _secrets(secrets_file: Path | None) -> dict:
    if secrets_file is None:
        return {}
    from scratchd.pipeline.secrets import load_secrets_file

    return dict(load_secrets_file(secrets_file))
