"""Where a step's image goes: repository, tags and credentials from the step options.

Shared by the scratch push (our registry client) and the docker steps (the
engine pushes). Precedence of credentials follows wercker: the step's own
``username``/``password`` first, then the daemon's configuration, the docker
config and credential programs (resolved by the registry client factory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scratchd.errors import PipelineError
from scratchd.models import ImageRef, Secret
from scratchd.runner.steps import StepContext, StepOutcome


@dataclass(frozen=True)
class Target:
    """A repository to push to, with the tags and the step's own credential."""

    ref: ImageRef
    tags: tuple[str, ...]
    username: str = ""
    password: Secret | None = None

    @property
    def name(self) -> str:
        """``host/path`` as docker names it (Hub images without the host)."""
        return str(self.ref)


def target_for(ctx: StepContext) -> Target | None:
    """The step's push target, or None when it names no repository."""
    from scratchd.registry.reference import parse_repository, qualify
    from scratchd.runner.steps.scratch_push import target_tags

    repository = ctx.prop("repository")
    if not repository:
        return None
    ref = parse_repository(qualify(repository, ctx.prop("registry")))
    password = ctx.prop("password")
    return Target(
        ref=ref,
        tags=target_tags(ctx),
        username=ctx.prop("username"),
        password=Secret(password) if password else None,
    )


def push_image(ctx: StepContext, image, target: Target) -> StepOutcome:
    """Push a baked image with the registry client the executor was given."""
    factory = ctx.publishing.registry_client_factory
    if factory is None:
        raise PipelineError(f"{ctx.step.id}: pushing is not configured for this run")
    credential = None
    if target.username or target.password:
        from scratchd.registry.credentials import Credential

        credential = Credential(target.username, target.password, source="step options")
    client = factory(target.ref, credential)
    ctx.log(f"pushing {target.name} tags {', '.join(target.tags)}")
    result = client.push(image, target.ref, target.tags)
    digest = result.digest or image.digest
    platform = result.platform_digest
    ctx.log(f"pushed {target.name}@{digest}" + (f" (platform {platform})" if platform else ""))
    return StepOutcome(
        digest=digest,
        images=tuple(f"{target.name}:{t}" for t in target.tags),
        pushes=(result.figures(),),
        platform=platform,
    )


def registry_client_factory(
    *, configured=None, docker_config=None, insecure: tuple[str, ...] = (), shared=None
) -> Callable[[ImageRef, object], object]:
    """A ``(ref, step_credential) -> RegistryClient`` factory for the executor.

    ``configured`` is the daemon config's ``{host: (username, Secret)}``; the
    step's own credential goes first, then that, then docker's config files.
    With ``shared`` (a long-lived RegistryClient) every push reuses its
    connections, blob memory and tokens, with these credentials.
    """
    from scratchd.registry.client import RegistryClient
    from scratchd.registry.credentials import CredentialStore

    def make(ref: ImageRef, credential) -> RegistryClient:
        explicit = {ref.registry: credential} if credential is not None else None
        store = CredentialStore(
            explicit=explicit, configured=configured, docker_config=docker_config
        )
        if shared is not None:
            return shared.with_credentials(store, insecure=insecure)
        return RegistryClient(store, insecure=insecure)

    return make
