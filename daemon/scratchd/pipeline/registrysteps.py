"""Plan types of the retired registry steps scratchd runs natively.

wercker's step registry is gone, yet most real wercker.yml files use a few
of its steps. These are built in (``runner/steps/`` runs each), read with
the options and environment variables their READMEs documented. The
compiler makes one of these for ``npm-install``, ``wercker/npm-install``
or ``npm-install@1.1.4`` alike, unless the repository vendors its own copy
in ``.scratchd/steps/<name>/``, which wins. Options stay unexpanded text.
"""

from __future__ import annotations

from dataclasses import dataclass

from scratchd.pipeline.buildplan import PlanStep


@dataclass(frozen=True)
class BuiltinStep(PlanStep):
    """A registry step run natively; ``tools`` are the commands it needs, each with
    the Debian package that has it (for the host executor's message)."""

    tools: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NpmInstallStep(BuiltinStep):
    """``npm install $options``, the npm cache in the cache dir, retried 3 times."""


@dataclass(frozen=True)
class NpmTestStep(BuiltinStep):
    """``npm test``."""


@dataclass(frozen=True)
class BundleInstallStep(BuiltinStep):
    """``bundle install`` into the cache dir (path, without, jobs, gemfile, deployment...)."""


@dataclass(frozen=True)
class PipInstallStep(BuiltinStep):
    """``pip install -r $requirements_file`` and ``$packages_list``."""


@dataclass(frozen=True)
class SetupGoWorkspaceStep(BuiltinStep):
    """Place the source at ``$GOPATH/src/$package_dir``; later steps work there."""


@dataclass(frozen=True)
class InstallPackagesStep(BuiltinStep):
    """``apt-get install -y $packages`` (apt lists cached)."""


@dataclass(frozen=True)
class AddSshKeyStep(BuiltinStep):
    """Write the key pair ``$keyname`` (from ``$<keyname>_PRIVATE``) for ssh to use."""


@dataclass(frozen=True)
class AddToKnownHostsStep(BuiltinStep):
    """Add ``hostname``'s keys (ssh-keyscan, or ``fingerprint``-checked) to known_hosts."""


@dataclass(frozen=True)
class BashTemplateStep(BuiltinStep):
    """Expand ``$VARS`` in ``*.template`` files (or ``input``) into the file without it."""


@dataclass(frozen=True)
class KubectlStep(BuiltinStep):
    """``kubectl`` with the step's connection options and ``command``."""


@dataclass(frozen=True)
class SlackNotifierStep(BuiltinStep):
    """POST the pipeline's result to a Slack webhook ``url`` (from the daemon)."""


@dataclass(frozen=True)
class GithubCreateReleaseStep(BuiltinStep):
    """Create a GitHub release; its id is exported for ``github-upload-asset``."""


@dataclass(frozen=True)
class BasePathStep(BuiltinStep):
    """wercker's pipeline ``base-path``: the source is placed at option ``path`` and
    the steps after work there (made by the compiler, first in the pipeline)."""


@dataclass(frozen=True)
class GithubUploadAssetStep(BuiltinStep):
    """Upload ``file`` to a GitHub release (``release_id``, default: the one just made)."""
