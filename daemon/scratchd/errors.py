"""The one exception tree of scratchd.

Every error scratchd raises on purpose is a :class:`ScratchdError`, so the
CLI and the daemon can turn it into a one-line message instead of a
traceback. The tree separates *what the user must fix* from *what may go
away if we try again*, because the scheduler retries only the latter::

    ScratchdError
    ├── UsageError                 bad command-line input (exit code 2); raised by cli/ only
    ├── ConfigError                scratchd.toml: names file, key and line
    ├── ImageError                 the image builder refused its input
    │   ├── UnsupportedFileError   FIFO, socket, device, unreadable file ...
    │   └── ImageOptionError       cmd, ports, env, tag ... option invalid (exit code 2)
    ├── InvalidReferenceError      repository name or tag Docker would refuse (exit code 2)
    ├── UnknownBuildError          no build with that id in the state (exit code 2)
    ├── BadRequestError            a web request's parameters are invalid (HTTP 400)
    ├── PipelineError              wercker.yml cannot become a BuildPlan
    │   └── PipelineSyntaxError    names file, line and column
    │       └── StepCompileError   a step that cannot run here (names the step)
    ├── BuildFailure               the user's build failed (never retried)
    │   ├── StepFailed             a step exited non-zero
    │   ├── StepTimeout            command-timeout / no-response-timeout
    │   └── BuildCancelled         cancelled by a user or by a newer commit
    ├── InfrastructureError        not the user's fault; retried with backoff
    │   ├── BackendError           Docker engine down, box image missing ...
    │   ├── RegistryError          HTTP status + registry error code
    │   │   └── AuthError          401/403, bad credentials, DENIED
    │   ├── GitError               repository unreadable, object missing
    │   └── StoreError             the state database failed
    ├── CredentialError            no usable credential / broken helper
    └── DeliveryError              a notification sink failed (retried until give-up)

Messages never contain secrets: code that builds a message from user data
that may hold a credential passes it through :mod:`scratchd.redact` first.
"""

from __future__ import annotations


class ScratchdError(Exception):
    """Base of every error scratchd raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code = 1


class UsageError(ScratchdError):
    """The command line asked for something impossible."""

    exit_code = 2


class ConfigError(ScratchdError):
    """A configuration file is invalid; the message names file, key and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path, self.key, self.line = path, key, line
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        keyed = f"{key}: " if key else ""
        super().__init__(f"{prefix}{keyed}{message}")


class ImageError(ScratchdError):
    """The image builder cannot turn its input into an image."""


class UnsupportedFileError(ImageError):
    """A file in the build output cannot be stored in an image layer."""


class ImageOptionError(ImageError):
    """An image option (``cmd``, ``ports``, ``env``, ``tag`` ...) is invalid.

    The message names the option as the caller called it (a wercker.yml key
    or a command-line flag); exit code 2, as for any bad input.
    """

    exit_code = 2


class InvalidReferenceError(ScratchdError):
    """A repository name or tag that Docker would refuse.

    Not a :class:`RegistryError`: no registry was asked, and retrying a bad
    name cannot help.
    """

    exit_code = 2


class BadRequestError(ScratchdError):
    """A request to ``scratchd web`` asked for something malformed (answered with 400)."""

    exit_code = 2


class UnknownBuildError(ScratchdError):
    """No build with the given id exists in the state database.

    Not a :class:`StoreError`: the database works, the id is wrong.
    """

    exit_code = 2


class PipelineError(ScratchdError):
    """A wercker.yml cannot be turned into a Plan."""


class PipelineSyntaxError(PipelineError):
    """A wercker.yml problem at a known place (``FILE:LINE:COL: message``)."""

    def __init__(self, message: str, *, path: str, line: int = 0, column: int = 0) -> None:
        self.path, self.line, self.column, self.reason = path, line, column, message
        where = f"{path}:{line}:{column}" if line else path  # line 0: the file as a whole
        super().__init__(f"{where}: {message}")


class StepCompileError(PipelineSyntaxError):
    """A step that cannot run here (not vendored, outside the repository, bad step.yml).

    Found at compile time, but it is that step the build fails on, so the
    outcome names it as the failed step.
    """

    def __init__(self, message: str, *, step: str, path: str, line: int = 0, column: int = 0):
        super().__init__(message, path=path, line=line, column=column)
        self.step = step


class BuildFailure(ScratchdError):
    """The user's build failed. Retrying would fail the same way."""


class StepFailed(BuildFailure):
    """A step exited with a non-zero status."""

    def __init__(self, message: str, *, step: str = "", exit_code: int | None = None) -> None:
        self.step, self.step_exit_code = step, exit_code
        super().__init__(message)


class StepTimeout(StepFailed):
    """A step ran past command-timeout or printed nothing for no-response-timeout."""


class BuildCancelled(BuildFailure):
    """The build was cancelled (by a user, a newer commit, or shutdown)."""


class InfrastructureError(ScratchdError):
    """Something outside the user's build broke; the scheduler may retry."""

    #: Whether trying again later can help (a wrong password will not).
    retryable = True


class BackendError(InfrastructureError):
    """The execution backend (Docker engine, host) could not run the step."""


class RegistryError(InfrastructureError):
    """The registry refused or failed a request.

    Carries the HTTP status and the registry's error code (``DENIED``,
    ``NAME_UNKNOWN`` ...) so callers can decide without parsing text.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        self.status, self.code = status, code
        super().__init__(message)


class AuthError(RegistryError):
    """The registry rejected our credentials or our token's scope."""

    retryable = False


class GitError(InfrastructureError):
    """A repository could not be read."""


class StoreError(InfrastructureError):
    """The state database failed."""


class CredentialError(ScratchdError):
    """No usable credential could be found, or a credential helper failed."""


class DeliveryError(ScratchdError):
    """A notification could not be delivered to a sink this time.

    ``unreachable`` says the sink itself is down (connection refused, timeout),
    not this one event: the sender then holds the sink's other events back
    until the retry instead of failing each of them in turn.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        self.unreachable = unreachable
        super().__init__(message)
