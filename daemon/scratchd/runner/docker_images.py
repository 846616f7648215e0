"""Box images for the Docker backend: use the local one, else pull with the box's credentials.

A box (or service) names an image the way wercker.yml does: ``golang:1.22``,
``quay.io/org/builder`` or a bare ``org/builder`` plus ``registry:``. The
engine is asked first, because offline machines and locally built boxes
are the normal case here; only a missing image is pulled, and a pull that
fails is a :class:`BackendError` that names the image and what the engine
said, with every credential masked.

The engine's answer also says which image ran, for the provenance
(:func:`box_digest`): the repository digest of a pulled box, or the image
ID of one that only exists on this engine.
"""

from __future__ import annotations

import logging

import docker
import docker.errors
import requests

from scratchd.errors import BackendError
from scratchd.models import BoxDigest, Secret
from scratchd.pipeline.buildplan import Box
from scratchd.redact import Redactor
from scratchd.registry.reference import qualify, registry_host, split_host

log = logging.getLogger(__name__)


def image_ref(box: Box) -> str:
    """The reference to run: ``box.image``, prefixed with ``registry``'s host if it has none."""
    return qualify(box.image, box.registry)


def reveal(value: str) -> str:
    """The real text of a password that may be a :class:`Secret`."""
    return value.reveal() if isinstance(value, Secret) else value


def ensure_image(api: docker.APIClient, box: Box, redactor: Redactor) -> tuple[str, BoxDigest]:
    """Make sure the box's image is in the engine; returns the reference used and its digest."""
    ref = image_ref(box)
    try:
        return ref, box_digest(ref, api.inspect_image(ref))
    except docker.errors.ImageNotFound:
        pass
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BackendError(redactor.redact(f"docker engine: cannot inspect {ref}: {exc}")) from exc
    log.info("pulling box image %s", ref)
    try:
        inspected = _pull(api, ref, _auth_config(box))
    except (docker.errors.DockerException, requests.RequestException, _PullFailed) as exc:
        raise BackendError(
            redactor.redact(f"box image {ref} is not available locally and cannot be pulled: {exc}")
        ) from None
    return ref, box_digest(ref, inspected)


def box_digest(ref: str, inspected: dict) -> BoxDigest:
    """The manifest digest ``ref``'s repository has for the image, else its image ID.

    Only a ``RepoDigests`` entry of the same repository counts: the same
    image pulled from elsewhere may have a different manifest there.
    """
    name, _, pinned = ref.partition("@")
    wanted = _repository(name)
    for entry in inspected.get("RepoDigests") or ():
        repo, _, digest = entry.partition("@")
        if _repository(repo) == wanted and (not pinned or digest == pinned):
            return BoxDigest(name, digest)
    if pinned:  # the engine ran exactly what the pin names
        return BoxDigest(name, pinned)
    return BoxDigest(name, str(inspected.get("Id", "")), "image-id")


def _repository(name: str) -> str:
    """``golang:1.22``, ``docker.io/library/golang`` → ``golang``; a tag is dropped."""
    slash = name.rfind("/")
    if ":" in name[slash + 1 :]:
        name = name[: name.rfind(":")]
    for prefix in ("docker.io/", "index.docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name


class _PullFailed(Exception):
    """The engine reported an error inside the pull's progress stream."""


def _pull(api: docker.APIClient, ref: str, auth: dict | None) -> dict:
    # The stream carries errors as {"error": ...} messages after a 200 response.
    for message in api.pull(ref, stream=True, decode=True, auth_config=auth):
        if "error" in message:
            raise _PullFailed(message.get("error"))
    inspected: dict = api.inspect_image(ref)  # raises if the engine still does not have it
    return inspected


def _auth_config(box: Box) -> dict | None:
    if not box.username and not box.password:
        return None
    auth = {"username": box.username, "password": reveal(box.password)}
    host = registry_host(box.registry) or split_host(image_ref(box))[0]
    if host:
        auth["serveraddress"] = host
    return auth
