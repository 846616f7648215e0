"""Where registry credentials come from, in a fixed order of precedence.

1. explicit: ``--username`` + ``--password-stdin``, or a step's username/password;
2. the daemon config's ``[registry."host"]`` entries (already read by the
   config loader, handed in as plain data);
3. ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``: a per-host
   ``credHelpers`` entry, then ``auths`` (base64 ``auth`` or ``identitytoken``),
   then the global ``credsStore``; helpers run as ``docker-credential-<name> get``;
4. ``$REGISTRY_AUTH_FILE`` (podman/skopeo's auth.json, same ``auths`` shape);
5. anonymous.

Every password and token is a :class:`~scratchd.models.Secret` from the
moment it is read, so no repr, log line or exception can show it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchd.errors import CredentialError
from scratchd.models import Secret
from scratchd.registry.reference import DOCKER_HUB, HUB_ALIASES

# Docker Hub is stored under its v1 index URL by `docker login`.
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB)
_HELPER_TIMEOUT = 30.0
_NOT_FOUND = "credentials not found"


@dataclass(frozen=True)
class Credential:
    """Username + password, or an OAuth2 identity (refresh) token."""

    username: str
    password: Secret | None = None
    identity_token: Secret | None = None
    source: str = ""  # where it came from, for error messages ("docker config.json")

    def secrets(self) -> tuple[Secret, ...]:
        """The values to mask in error texts (still wrapped: the masker reveals them)."""
        return tuple(s for s in (self.password, self.identity_token) if s)


Runner = Callable[..., subprocess.CompletedProcess[str]]


class CredentialStore:
    """Resolves the credential for a registry host; ``None`` means anonymous."""

    def __init__(
        self,
        *,
        explicit: Mapping[str, Credential] | None = None,
        configured: Mapping[str, Credential | tuple[str, Secret]] | None = None,
        docker_config: Path | None = None,
        auth_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        runner: Runner = subprocess.run,
    ) -> None:
        env = os.environ if environ is None else environ
        self._explicit = dict(explicit or {})
        self._configured = {
            h: _as_credential(v, "daemon config") for h, v in (configured or {}).items()
        }
        self._docker_config = docker_config or _default_docker_config(env)
        auth_env = env.get("REGISTRY_AUTH_FILE")
        self._auth_file = auth_file or (Path(auth_env) if auth_env else None)
        self._run = runner

    def get(self, host: str) -> Credential | None:
        """The first credential found for ``host`` in the documented order."""
        for found in (self._explicit.get(host), self._configured.get(host)):
            if found is not None:
                return found
        found = self._from_docker_config(host)
        if found is None and self._auth_file is not None:
            found = _from_auths(_load_json(self._auth_file), host, str(self._auth_file))
        return found

    def _from_docker_config(self, host: str) -> Credential | None:
        if self._docker_config is None or not self._docker_config.exists():
            return None
        data = _load_json(self._docker_config)
        where = str(self._docker_config)
        helpers = data.get("credHelpers") or {}
        for key in _keys_for(host):
            if key in helpers:
                return self._from_helper(str(helpers[key]), host, where)
        found = _from_auths(data, host, where)
        if found is None and data.get("credsStore"):
            found = self._from_helper(str(data["credsStore"]), host, where)
        return found

    def _from_helper(self, name: str, host: str, where: str) -> Credential | None:
        program = f"docker-credential-{name}"
        if shutil.which(program) is None:
            raise CredentialError(f"{where}: credential helper {program} is not on PATH")
        server = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
        try:
            proc = self._run(
                [program, "get"],
                input=server,
                capture_output=True,
                text=True,
                timeout=_HELPER_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialError(f"credential helper {program} failed for {host}: {exc}") from None
        if proc.returncode != 0:
            if _NOT_FOUND in (proc.stdout + proc.stderr).lower():
                return None
            detail = (proc.stderr or proc.stdout).strip().splitlines()[:1] or ["no output"]
            raise CredentialError(
                f"credential helper {program} failed for {host} "
                f"(exit {proc.returncode}): {detail[0][:200]}"
            )
        return _parse_helper_output(proc.stdout, program, host)


def _parse_helper_output(text: str, program: str, host: str) -> Credential:
    try:
        data = json.loads(text)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise CredentialError(
            f"credential helper {program} gave unreadable output for {host} "
            "(expected JSON with Username and Secret)"
        ) from None
    source = f"credential helper {program}"
    if username == "<token>":
        return Credential("", identity_token=Secret(secret), source=source)
    return Credential(username, Secret(secret), source=source)


def _from_auths(data: dict[str, Any], host: str, where: str) -> Credential | None:
    auths = data.get("auths") or {}
    normalised = {_normalise_key(k): v for k, v in auths.items() if isinstance(v, dict)}
    for key in _keys_for(host):
        entry = normalised.get(_normalise_key(key))
        if entry:
            return _decode_entry(entry, key, where)
    return None


def _decode_entry(entry: dict[str, Any], key: str, where: str) -> Credential | None:
    source = f"{where} auths[{key!r}]"
    username, password = entry.get("username", ""), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=False).decode()
            username, sep, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError(f"{source}: 'auth' is not base64 of user:password") from None
        if not sep:
            raise CredentialError(f"{source}: 'auth' is not base64 of user:password")
    token = entry.get("identitytoken")
    if token:
        return Credential(username, identity_token=Secret(token), source=source)
    if password:
        return Credential(username, Secret(password), source=source)
    return None


def _keys_for(host: str) -> tuple[str, ...]:
    return _HUB_KEYS if host == DOCKER_HUB else (host,)


def _normalise_key(key: str) -> str:
    """``https://quay.io/v1/`` and ``quay.io`` name the same registry."""
    key = key.removeprefix("https://").removeprefix("http://")
    host = key.split("/", 1)[0]
    return "docker.io" if host in HUB_ALIASES or host == DOCKER_HUB else host


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise CredentialError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialError(f"{path}: expected a JSON object")
    return data


def _default_docker_config(env: Mapping[str, str]) -> Path | None:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _as_credential(value: Credential | tuple[str, Secret], source: str) -> Credential:
    if isinstance(value, Credential):
        return value
    username, password = value
    return Credential(username, as_secret(password), source=source)


def as_secret(value: str | Secret | None) -> Secret | None:
    """Wrap ``value`` once; ``None`` (a registry without a password) stays ``None``."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)
