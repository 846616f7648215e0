"""Box images for the Docker backend: use the local one, else pull with the box's credentials.

A box (or service) names an image the way wercker.yml does: ``golang:1.22``,
``quay.io/org/builder`` or a bare ``org/builder`` plus ``registry:``. The
engine is asked first, because offline machines and locally built boxes
are the normal case here; only a missing image is pulled, and a pull that
fails is a :class:`BackendError` that names the image and what the engine
said, with every credential masked.
"""

from __future__ import annotations

import logging

import docker
import docker.errors
import requests

from scratchd.errors import BackendError
from scratchd.models import Secret
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


def ensure_image(api: docker.APIClient, box: Box, redactor: Redactor) -> str:
    """Make sure the box's image is in the engine; returns the reference used."""
    ref = image_ref(box)
    try:
        api.inspect_image(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BackendError(redactor.redact(f"docker engine: cannot inspect {ref}: {exc}")) from exc
    log.info("pulling box image %s", ref)
    try:
        _pull(api, ref, _auth_config(box))
    except (docker.errors.DockerException, requests.RequestException, _PullFailed) as exc:
        raise BackendError(
            redactor.redact(f"box image {ref} is not available locally and cannot be pulled: {exc}")
        ) from None
    return ref


class _PullFailed(Exception):
    """The engine reported an error inside the pull's progress stream."""


def _pull(api: docker.APIClient, ref: str, auth: dict | None) -> None:
    # The stream carries errors as {"error": ...} messages after a 200 response.
    for message in api.pull(ref, stream=True, decode=True, auth_config=auth):
        if "error" in message:
            raise _PullFailed(message.get("error"))
    api.inspect_image(ref)  # raises if the engine still does not have it


def _auth_config(box: Box) -> dict | None:
    if not box.username and not box.password:
        return None
    auth = {"username": box.username, "password": reveal(box.password)}
    host = registry_host(box.registry) or split_host(image_ref(box))[0]
    if host:
        auth["serveraddress"] = host
    return auth
