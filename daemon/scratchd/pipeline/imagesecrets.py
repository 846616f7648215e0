"""Secrets must not reach an image config by way of the ``env`` or ``labels`` options.

An image's config is public to anyone who can pull it, and masking cannot
help there: ``env: TOKEN=$API_TOKEN`` on a push step would bake the token in
clear into the image. So a push step whose ``env`` or ``labels`` option
refers to a secret is refused unless the wercker.yml says the option is
meant to be public::

    - internal/docker-scratch-push:
        repository: registry.example.com/org/app
        env: VERSION=$WERCKER_GIT_COMMIT API_URL=$PUBLIC_URL
        labels: org.example.build-token=$BUILD_TOKEN
        public-labels: true      # BUILD_TOKEN is a secret, and that is fine here

The compile step refuses (it knows which variables are secrets);
``scratchd lint`` warns, knowing only the names (those of ``--secrets-file``
and names that look like credentials). The runner checks the expanded values
against the build's masker as a second line of defence (see
:func:`scratchd.runner.steps.scratch_push.image_spec`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from scratchd.expand import expand
from scratchd.pipeline.buildplan import marked_public

#: The steps whose ``env``/``labels`` options become an image config.
PUSH_STEPS = frozenset({"internal/docker-scratch-push", "internal/docker-push"})

#: The image options that end up in the config, and the option marking each public.
PUBLIC_MARKERS: Mapping[str, str] = {"env": "public-env", "labels": "public-labels"}

#: Name parts that make lint suspect a variable holds a credential.
_SECRET_WORDS = re.compile(
    r"(^|_)(PASSWORD|PASSWD|PASS|PW|SECRET|TOKEN|KEY|APIKEY|CREDENTIALS?|AUTH|PRIVATE)(_|$)",
    re.IGNORECASE,
)


class _Recorder(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def get(self, key: str, default: object = None) -> str:
        self.seen.append(key)
        return ""


def looks_secret(name: str) -> bool:
    """Whether a variable name suggests a credential (``QUAY_PASSWORD``, ``API_TOKEN``)."""
    return bool(_SECRET_WORDS.search(name))


def referenced_names(text: str) -> list[str]:
    """The variable names ``text`` expands, found with the runner's own expansion."""
    recorder = _Recorder()
    expand(text, recorder)
    return list(dict.fromkeys(recorder.seen))


def secret_references(
    options: Iterable[tuple[str, str]], is_secret: Callable[[str], bool]
) -> Iterator[tuple[str, str]]:
    """``(option, variable)`` for each secret an unmarked ``env``/``labels`` refers to."""
    options = tuple(options)
    for key, value in options:
        if key not in PUBLIC_MARKERS or marked_public(options, key):
            continue
        for name in referenced_names(value):
            if is_secret(name):
                yield key, name


def refusal(step_id: str, option: str, name: str) -> str:
    """The message for a refused (or, from lint, suspicious) reference."""
    return (
        f"option '{option}' of {step_id} puts ${name}, a secret, in clear into the image "
        f"config; remove it, or add '{PUBLIC_MARKERS[option]}: true' if it is meant to be public"
    )
