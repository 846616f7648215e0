"""``add-ssh-key`` and ``add-to-known_hosts``, as wercker's steps of those names.

``add-ssh-key``: wercker generated key pairs in the app settings and gave
them to the build as ``$<KEYNAME>_PRIVATE`` / ``$<KEYNAME>_PUBLIC``; the step
wrote the private key to ``~/.ssh/id_rsa`` (optionally only for ``host``).
Here the pair comes the same way (environment or secrets file).

``add-to-known_hosts``: ``ssh-keyscan`` the ``hostname`` (``port``, key
``type``) into ``~/.ssh/known_hosts`` (or ``/etc/ssh/ssh_known_hosts`` with
``local: false``); with ``fingerprint``, only keys whose SHA256 (or old MD5)
fingerprint matches are added, and none matching fails the step.
"""

from __future__ import annotations

from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.builtin import option_env, shell

ADD_SSH_KEY = """\
name="$WERCKER_ADD_SSH_KEY_KEYNAME"
[ -n "$name" ] || { echo "add-ssh-key: the option 'keyname' is required" >&2; exit 1; }
private_var="${name}_PRIVATE"
private="$(printenv "$private_var" || true)"
[ -n "$private" ] || { echo "add-ssh-key: \\$$private_var is not set" >&2; exit 1; }
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
key="$HOME/.ssh/id_rsa"
[ -n "$WERCKER_ADD_SSH_KEY_HOST" ] && key="$HOME/.ssh/$name"
printf '%s\\n' "$private" > "$key"
chmod 600 "$key"
if [ -n "$WERCKER_ADD_SSH_KEY_HOST" ]; then
    printf 'Host %s\\n    IdentityFile %s\\n    IdentitiesOnly yes\\n' \\
        "$WERCKER_ADD_SSH_KEY_HOST" "$key" >> "$HOME/.ssh/config"
    chmod 600 "$HOME/.ssh/config"
fi
echo "add-ssh-key: $name written to $key"
"""

KNOWN_HOSTS = """\
host="$WERCKER_ADD_TO_KNOWN_HOSTS_HOSTNAME"
[ -n "$host" ] || { echo "add-to-known_hosts: the option 'hostname' is required" >&2; exit 1; }
if [ "$WERCKER_ADD_TO_KNOWN_HOSTS_LOCAL" = "false" ]; then
    file=/etc/ssh/ssh_known_hosts
else
    mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
    file="$HOME/.ssh/known_hosts"
fi
set -- -T 10
[ -n "$WERCKER_ADD_TO_KNOWN_HOSTS_PORT" ] && set -- "$@" -p "$WERCKER_ADD_TO_KNOWN_HOSTS_PORT"
[ -n "$WERCKER_ADD_TO_KNOWN_HOSTS_TYPE" ] && set -- "$@" -t "$WERCKER_ADD_TO_KNOWN_HOSTS_TYPE"
scanned="$(mktemp)"
trap 'rm -f "$scanned" "$scanned.one"' EXIT
ssh-keyscan "$@" "$host" > "$scanned" 2>/dev/null || true
[ -s "$scanned" ] || { echo "add-to-known_hosts: no keys from $host" >&2; exit 1; }
want="$WERCKER_ADD_TO_KNOWN_HOSTS_FINGERPRINT"
added=0
while read -r line; do
    if [ -n "$want" ]; then
        printf '%s\\n' "$line" > "$scanned.one"
        sums="$(ssh-keygen -l -f "$scanned.one"; ssh-keygen -l -E md5 -f "$scanned.one")"
        case "$sums" in *"$want"*) ;; *) continue ;; esac
    fi
    printf '%s\\n' "$line" >> "$file"
    added=$((added + 1))
done < "$scanned"
if [ "$added" -eq 0 ]; then
    echo "add-to-known_hosts: no key of $host has fingerprint $want" >&2
    exit 1
fi
echo "add-to-known_hosts: $added key(s) of $host added to $file"
"""


def add_ssh_key(ctx: StepContext) -> StepOutcome:
    name = ctx.prop("keyname")
    private = ctx.env.get(f"{name}_PRIVATE", "") if name else ""
    ctx.output.add_secrets(private)  # a private key is never shown
    return shell(ctx, ADD_SSH_KEY, option_env(ctx, "WERCKER_ADD_SSH_KEY", ("keyname", "host")))


def add_to_known_hosts(ctx: StepContext) -> StepOutcome:
    keys = ("hostname", "fingerprint", "type", "port", "local")
    return shell(ctx, KNOWN_HOSTS, option_env(ctx, "WERCKER_ADD_TO_KNOWN_HOSTS", keys))
