"""``--secrets-file``: ``KEY=value`` lines that become masked pipeline env.

The format is the common dotenv/shell subset, so the same file can be
``source``d by a shell::

    # registry login
    export QUAY_PASSWORD='s3cr3t with spaces'
    QUAY_USERNAME=org+robot
    TOKEN="line\\nbreak"

Blank lines and ``#`` comments are skipped; ``export`` is optional; single
quotes are literal, double quotes understand ``\\"``, ``\\\\``, ``\\$``,
``\\n``, ``\\t``; an unquoted value is the rest of the line, stripped (a ``#``
in it is kept: passwords contain them). No ``$VAR`` expansion happens.

Errors name the file and line but never quote the line: it may hold a secret.
"""

from __future__ import annotations

import re
from pathlib import Path

from scratchd.errors import ConfigError
from scratchd.models import MIN_SECRET_LENGTH, Secret

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "n": "\n", "t": "\t", "r": "\r"}


def load_secrets_file(path: Path | str) -> dict[str, Secret]:
    """Read ``KEY=value`` lines; the last of a repeated key wins."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read secrets file: {reason}", path=str(path)) from None
    return parse_secrets(text, str(path))


def parse_secrets(text: str, path: str) -> dict[str, Secret]:
    """Parse secrets-file text; ``path`` is only used in error messages."""
    secrets: dict[str, Secret] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if not match:
            raise ConfigError(
                "expected KEY=value (KEY: letters, digits, _)", path=path, line=number
            )
        key, raw = match.groups()
        secret = Secret(_value(raw.strip(), path, number))
        if secret.too_short:
            raise ConfigError(
                f"{key}: shorter than {MIN_SECRET_LENGTH} characters, too short to be masked "
                "in logs (an empty value is fine)",
                path=path,
                line=number,
            )
        secrets[key] = secret
    return secrets


def _value(raw: str, path: str, line: int) -> str:
    if not raw or raw[0] not in "'\"":
        return raw
    quote = raw[0]
    value, end = (_single(raw) if quote == "'" else _double(raw)) or ("", -1)
    if end < 0:
        raise ConfigError(f"unterminated {quote} quote", path=path, line=line)
    rest = raw[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise ConfigError("unexpected text after the closing quote", path=path, line=line)
    return value


def _single(raw: str) -> tuple[str, int] | None:
    end = raw.find("'", 1)
    return (raw[1:end], end) if end > 0 else None


def _double(raw: str) -> tuple[str, int] | None:
    out: list[str] = []
    i = 1
    while i < len(raw):
        char = raw[i]
        if char == '"':
            return "".join(out), i
        if char == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return None
