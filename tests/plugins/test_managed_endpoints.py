"""Where the services and the exporter reach Redis and PostgreSQL follows the managed settings (docs/managed-redis.md,
docs/managed-database.md): the roles' own defaults, templated by a real ansible-playbook run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_loader import PROJECT, play

DEFAULTS = ("app_release", "prometheus")
NAMES = ("app_release_redis_host", "app_release_redis_port", "prometheus_redis_address",
         "app_release_postgres_host", "app_release_postgres_port", "prometheus_postgres_host")


def endpoints(tmp_path: Path, settings: dict[str, object]) -> dict[str, str]:
    out = tmp_path / "endpoints.json"
    loads = "".join(f"""
        - name: Read the {role} role's defaults
          ansible.builtin.include_vars: {PROJECT}/roles/{role}/defaults/main.yml
    """ for role in DEFAULTS)
    values = ", ".join(f"'{name}': {name} | string" for name in NAMES)
    done = play(tmp_path, loads + f"""
        - name: Keep the endpoints
          ansible.builtin.copy:
            content: "{{{{ {{{values}}} | to_json }}}}"
            dest: {out}
            mode: "0600"
    """, "-e", json.dumps({"_app_release_data_address": "", **settings}))
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict[str, str] = json.loads(out.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"app_release_redis_host": "redis", "app_release_redis_port": "6379",
              "prometheus_redis_address": "redis://redis:6379", "app_release_postgres_host": "postgres",
              "app_release_postgres_port": "5432", "prometheus_postgres_host": "postgres"}),
        ({"redis_managed": {"host": "r-bp1x.redis.rds.aliyuncs.com", "port": 6380, "accounts": "console"}},
         {"app_release_redis_host": "r-bp1x.redis.rds.aliyuncs.com", "app_release_redis_port": "6380",
          "prometheus_redis_address": "redis://r-bp1x.redis.rds.aliyuncs.com:6380",
          "app_release_postgres_host": "postgres", "app_release_postgres_port": "5432",
          "prometheus_postgres_host": "postgres"}),
        ({"redis_managed": {"host": "r-bp1x.redis"}, "postgresql_managed": {"host": "pgm-x.pg", "port": 5433}},
         {"app_release_redis_host": "r-bp1x.redis", "app_release_redis_port": "6379",
          "prometheus_redis_address": "redis://r-bp1x.redis:6379", "app_release_postgres_host": "pgm-x.pg",
          "app_release_postgres_port": "5433", "prometheus_postgres_host": "pgm-x.pg"}),
    ],
    ids=["one-host", "managed-redis", "both-managed"],
)
def test_the_endpoints_follow_the_managed_settings(tmp_path: Path, settings: dict[str, object],
                                                   expected: dict[str, str]) -> None:
    assert endpoints(tmp_path, settings) == expected
