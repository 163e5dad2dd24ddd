#!/usr/bin/python
"""Make Redis ACL users exactly as given on a server someone else runs, or check accounts a provider's console made."""

from __future__ import annotations

import hashlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slipway.core.plugins.module_utils.redis_resp import Connection, RedisError

DOCUMENTATION = r"""
module: redis_users
short_description: Create or check Redis users on a managed Redis (Tair, a Redis 6+ someone else runs)
description:
  - With O(accounts=acl) logs in as O(login_user) and makes each of O(users) exactly C(reset on), its password's
    SHA-256 and its rules, with C(ACL SETUSER). The rules are compared as the server writes them. The desired rules
    are applied to a temporary user C(slipway-probe-<name>) (same rights, deleted at once) and its C(ACL LIST) line
    is compared with the user's, so a second run changes nothing. Then C(ACL SAVE) when the server keeps an ACL
    file.
  - The login needs only C(+acl|setuser +acl|deluser +acl|list +acl|save) (no keys, no data commands). Redis lets
    whoever may run ACL SETUSER grant any right, so that login still decides every service's rights. Keep its
    password in the vault.
  - With O(accounts=console) (Alibaba Cloud Tair/Redis, whose accounts are made in the console or its API) creates
    nothing. Each user must log in with its password and write, read and delete a key under its
    O(users[].key_prefix); every account that cannot is named, with what to do, and the task fails.
  - Passwords are never returned.
options:
  host: {description: The server's address., type: str, required: true}
  port: {description: Its port., type: int, default: 6379}
  tls: {description: Connect with TLS (the server's certificate verified)., type: bool, default: false}
  ca_file: {description: CA bundle for O(tls) (else the system's)., type: path}
  accounts:
    description: C(acl) to make the users, C(console) to check accounts made elsewhere.
    type: str
    choices: [acl, console]
    default: acl
  login_user: {description: The admin login (O(accounts=acl))., type: str}
  login_password: {description: Its password., type: str, no_log: true}
  users:
    description: The users.
    type: list
    elements: dict
    required: true
    options:
      name: {description: User name., type: str, required: true}
      password: {description: Its password., type: str, required: true, no_log: true}
      rules: {description: "ACL rules after the password, e.g. C(~svc:* &svc:* +@all -@dangerous).", type: str,
              default: ""}
      key_prefix: {description: "O(accounts=console): a prefix the account must be able to write; empty, the
                     account must only log in (the monitoring account).", type: str, default: ""}
attributes:
  check_mode: {support: full, description: "O(accounts=acl) still creates and deletes the probe users."}
author: Slipway
"""

EXAMPLES = r"""
- name: Make each service's Redis user on the managed server
  slipway.core.redis_users:
    host: r-bp1xxxx.redis.rds.aliyuncs.com
    login_user: slipway_admin
    login_password: "{{ vault_redis_managed_admin_password }}"
    users:
      - {name: notes-api, password: "{{ vault_notes_api_redis_password }}", rules: "~notes-api:* +@all -@dangerous"}
  no_log: true
"""

RETURN = r"""
users:
  description: Each user's name and whether it changed (O(accounts=acl)) or works (O(accounts=console)).
  type: list
  elements: dict
  returned: always
saved:
  description: Whether ACL SAVE wrote the server's ACL file (false when it keeps none).
  type: bool
  returned: when a user changed
"""

PROBE_PREFIX = "slipway-probe-"


def desired_rules(user: dict[str, Any]) -> list[str]:
    digest = hashlib.sha256(user["password"].encode("utf-8")).hexdigest()
    return ["reset", "on", "#" + digest, *str(user.get("rules") or "").split()]


def listed(conn: Connection) -> dict[str, str]:
    """ACL LIST as {user: the rest of its line}."""
    lines = conn.call("ACL", "LIST")
    found: dict[str, str] = {}
    for line in lines if isinstance(lines, list) else []:
        parts = str(line).split(" ", 2)
        if len(parts) >= 2 and parts[0] == "user":
            found[parts[1]] = parts[2] if len(parts) == 3 else ""
    return found


def make_users(conn: Connection, users: list[dict[str, Any]], check: bool) -> dict[str, Any]:
    """Compare each user with a probe of its desired rules; set the ones that differ (not in check mode)."""
    results = []
    changed = False
    for user in users:
        rules = desired_rules(user)
        probe = PROBE_PREFIX + user["name"]
        conn.call("ACL", "SETUSER", probe, *rules)
        try:
            lines = listed(conn)
        finally:
            conn.call("ACL", "DELUSER", probe)
        differs = lines.get(user["name"]) != lines[probe]
        if differs and not check:
            conn.call("ACL", "SETUSER", user["name"], *rules)
        results.append({"name": user["name"], "changed": differs})
        changed = changed or differs
    out: dict[str, Any] = {"changed": changed, "users": results}
    if changed and not check:
        try:
            conn.call("ACL", "SAVE")
            out["saved"] = True
        except RedisError as exc:  # no aclfile: the users live in memory; a provider persists them its own way
            if "ACL file" not in str(exc):
                raise
            out["saved"] = False
    return out


def check_accounts(params: dict[str, Any]) -> dict[str, Any]:
    """Each account logs in and writes, reads and deletes a key under its prefix; the problems, named."""
    results, problems = [], []
    for user in params["users"]:
        key = f"{user.get('key_prefix') or ''}slipway-check"
        with connect(params) as conn:
            try:
                conn.call("AUTH", user["name"], user["password"])
            except RedisError as exc:
                problems.append(
                    f"account {user['name']} cannot log in ({exc}): create it in the provider's console with "
                    "Read/Write permission and the password from the vault, or correct the password")
                results.append({"name": user["name"], "works": False})
                continue
            if not user.get("key_prefix"):  # a login without keys (the monitoring account): logging in is all
                results.append({"name": user["name"], "works": conn.call("PING") == "PONG"})
                continue
            try:
                conn.call("SET", key, "1", "EX", "60")
                ok = conn.call("GET", key) == "1"
                conn.call("DEL", key)
            except RedisError as exc:
                ok = False
                problems.append(f"account {user['name']} cannot write {key} ({exc}): give it Read/Write permission")
        results.append({"name": user["name"], "works": ok})
    return {"changed": False, "users": results, "problems": problems}


def connect(params: dict[str, Any]) -> Connection:
    return Connection(params["host"], params["port"], tls=params["tls"], ca_file=params.get("ca_file"))


def run(params: dict[str, Any], check: bool) -> dict[str, Any]:
    if params["accounts"] == "console":
        return check_accounts(params)
    with connect(params) as conn:
        conn.call("AUTH", params["login_user"], params["login_password"])
        return make_users(conn, params["users"], check)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "default": 6379},
            "tls": {"type": "bool", "default": False},
            "ca_file": {"type": "path"},
            "accounts": {"type": "str", "choices": ["acl", "console"], "default": "acl"},
            "login_user": {"type": "str"},
            "login_password": {"type": "str", "no_log": True},
            "users": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "password": {"type": "str", "required": True, "no_log": True},
                "rules": {"type": "str", "default": ""},
                "key_prefix": {"type": "str", "default": "", "no_log": False},
            }},
        },
        required_if=[("accounts", "acl", ("login_user", "login_password"))],
        supports_check_mode=True,
    )
    where = f"{module.params['host']}:{module.params['port']}"
    try:
        result = run(module.params, module.check_mode)
    except (OSError, ConnectionError) as exc:
        module.fail_json(msg=f"cannot reach Redis at {where}: {exc}")
    except RedisError as exc:
        login: str | None = module.params.get("login_user")
        module.fail_json(msg=f"Redis at {where} refused {login or 'the check'}: {exc}")
    problems = result.pop("problems", [])
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
