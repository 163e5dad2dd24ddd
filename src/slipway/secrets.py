"""Secrets: read from the CLI's own environment by name (an explicit allow-list), checked, never printed.

- SLIPWAY_VAULT_PASSWORD: Ansible Vault password -> ansible-playbook's environment, handed to Ansible by
  scripts/vault-password.sh (ANSIBLE_VAULT_PASSWORD_FILE)
- SLIPWAY_SSH_PRIVATE_KEY: the deploy user's private key -> ssh-agent, through ansible-runner's FIFO (ssh_key)
- SLIPWAY_REGISTRY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: container registry login -> ansible-playbook's
  environment (the playbooks read them with lookup('ansible.builtin.env', ...))
- SLIPWAY_FEISHU_WEBHOOK, SLIPWAY_FEISHU_SECRET, SLIPWAY_DINGTALK_WEBHOOK, SLIPWAY_DINGTALK_SECRET,
  SLIPWAY_WECOM_WEBHOOK, SLIPWAY_SLACK_WEBHOOK: notifications -> the CLI only, never to Ansible

Nothing else from the environment carries a secret into a run, and none of these is written to disk.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from slipway.exitcodes import InputError
from slipway.validation import Environment

VAULT_PASSWORD = "SLIPWAY_VAULT_PASSWORD"  # noqa: S105 - a variable name, not a password  # pragma: allowlist secret
SSH_PRIVATE_KEY = "SLIPWAY_SSH_PRIVATE_KEY"  # pragma: allowlist secret
REGISTRY_USERNAME = "SLIPWAY_REGISTRY_USERNAME"
REGISTRY_PASSWORD = "SLIPWAY_REGISTRY_PASSWORD"  # noqa: S105 - a variable name  # pragma: allowlist secret
FEISHU_WEBHOOK = "SLIPWAY_FEISHU_WEBHOOK"
FEISHU_SECRET = "SLIPWAY_FEISHU_SECRET"  # noqa: S105 - a variable name  # pragma: allowlist secret
DINGTALK_WEBHOOK = "SLIPWAY_DINGTALK_WEBHOOK"
DINGTALK_SECRET = "SLIPWAY_DINGTALK_SECRET"  # noqa: S105 - a variable name  # pragma: allowlist secret
WECOM_WEBHOOK = "SLIPWAY_WECOM_WEBHOOK"
SLACK_WEBHOOK = "SLIPWAY_SLACK_WEBHOOK"

# Passed to ansible-playbook's environment when set.
TO_PLAYBOOKS = (VAULT_PASSWORD, REGISTRY_USERNAME, REGISTRY_PASSWORD)
ALL = (
    VAULT_PASSWORD,
    SSH_PRIVATE_KEY,
    REGISTRY_USERNAME,
    REGISTRY_PASSWORD,
    FEISHU_WEBHOOK,
    FEISHU_SECRET,
    DINGTALK_WEBHOOK,
    DINGTALK_SECRET,
    WECOM_WEBHOOK,
    SLACK_WEBHOOK,
)
REDACTED = "***"
_MIN_REDACT = 4


@dataclass(frozen=True)
class Secrets:
    """The secret values the CLI was given; `repr` never shows them."""

    values: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Secrets:
        return cls({name: environ[name] for name in ALL if environ.get(name)})

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def for_playbooks(self) -> dict[str, str]:
        return {name: self.values[name] for name in TO_PLAYBOOKS if name in self.values}


class Redactor:
    """Replaces every known secret value (and each long line of a multi-line one) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        pieces: set[str] = set()
        for value in secrets:
            if len(value) >= _MIN_REDACT:
                pieces.add(value)
            pieces.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
        self._pieces = sorted(pieces, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for piece in self._pieces:
            if piece in text:
                text = text.replace(piece, REDACTED)
        return text


def check_ssh_key(key: str) -> None:
    """The key parses without a passphrase (ssh-keygen reads it on stdin: it never touches the disk)."""
    try:
        done = subprocess.run(
            ["ssh-keygen", "-y", "-P", "", "-f", "/dev/stdin"],  # noqa: S607 - ssh-keygen from PATH
            input=key if key.endswith("\n") else key + "\n",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(
            f"cannot check {SSH_PRIVATE_KEY}: ssh-keygen is not usable ({exc.__class__.__name__})"
        ) from exc
    if done.returncode != 0:
        raise InputError(
            f"{SSH_PRIVATE_KEY} is not a usable private key (ssh-keygen cannot read it without passphrase); "
            "store the whole key file, BEGIN and END lines included, of a key without a passphrase"
        )


def check_required(env: Environment, secrets: Secrets, environ: Mapping[str, str]) -> None:
    """Refuse a run whose secrets are missing or unusable, naming the variable to set (host keys:
    slipway.known_hosts, which reads the inventory with Ansible once the vault password is known to be there)."""
    if env.vaulted and not secrets.get(VAULT_PASSWORD):
        raise InputError(f"inventories/{env.name} holds vault-encrypted data: set {VAULT_PASSWORD}")
    ssh_hosts = [h for h in env.hosts if h.uses_ssh]
    key = secrets.get(SSH_PRIVATE_KEY)
    if ssh_hosts:
        if key:
            check_ssh_key(key)
        elif not environ.get("SSH_AUTH_SOCK"):
            raise InputError(
                f"{env.name} is reached over SSH ({ssh_hosts[0].name}): set {SSH_PRIVATE_KEY} "
                "(or run with an ssh-agent holding the key)"
            )
    if bool(secrets.get(REGISTRY_USERNAME)) != bool(secrets.get(REGISTRY_PASSWORD)):
        raise InputError(f"set both {REGISTRY_USERNAME} and {REGISTRY_PASSWORD}, or neither")
    for secret, url in ((FEISHU_SECRET, FEISHU_WEBHOOK), (DINGTALK_SECRET, DINGTALK_WEBHOOK)):
        if secrets.get(secret) and not secrets.get(url):
            raise InputError(f"{secret} is set but {url} is not; set the webhook too")
    for url in (FEISHU_WEBHOOK, DINGTALK_WEBHOOK, WECOM_WEBHOOK, SLACK_WEBHOOK):
        value = secrets.get(url)
        if value and not value.startswith("https://"):
            raise InputError(f"{url} must be an https:// URL")
