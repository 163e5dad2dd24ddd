#!/bin/sh
# Ansible Vault password source used by `slipway` (ANSIBLE_VAULT_PASSWORD_FILE points here when
# SLIPWAY_VAULT_PASSWORD is set). It prints the password from the environment; nothing is stored on disk.
# People can use it too:  SLIPWAY_VAULT_PASSWORD=... ansible-playbook --vault-password-file scripts/vault-password.sh ...
if [ -z "${SLIPWAY_VAULT_PASSWORD:-}" ]; then
    echo "vault-password.sh: SLIPWAY_VAULT_PASSWORD is not set" >&2
    exit 1
fi
printf '%s\n' "$SLIPWAY_VAULT_PASSWORD"
