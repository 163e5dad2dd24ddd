"""The CIS Docker Benchmark section 5 audit over `docker inspect` documents (no Docker: documents built here)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from slipway import container_audit


def hardened(name: str = "redis") -> dict[str, Any]:
    """An inspect document that passes every check."""
    return {
        "Name": f"/{name}",
        "Config": {"Healthcheck": {"Test": ["CMD", "redis-cli", "ping"]}},
        "Mounts": [{"Type": "bind", "Source": "/etc/slipway/redis", "Destination": "/conf", "RW": False}],
        "HostConfig": {
            "CapDrop": ["ALL"],
            "Privileged": False,
            "NetworkMode": "infra-shared-network",
            "Memory": 268435456,
            "NanoCpus": 500000000,
            "ReadonlyRootfs": True,
            "PortBindings": {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6379"}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
            "PidMode": "",
            "IpcMode": "private",
            "UTSMode": "",
            "UsernsMode": "",
            "Devices": [],
            "SecurityOpt": ["no-new-privileges"],
            "CgroupParent": "",
            "PidsLimit": 128,
        },
    }


def test_a_hardened_container_has_no_warning() -> None:
    assert container_audit.audit([hardened()]) == []


BREAKS: list[tuple[str, str, Any]] = [
    ("5.3", "HostConfig.CapDrop", ["NET_RAW"]),
    ("5.4", "HostConfig.Privileged", True),
    ("5.5", "Mounts", [{"Type": "bind", "Source": "/etc", "Destination": "/host/etc", "RW": True}]),
    ("5.5", "Mounts", [{"Type": "bind", "Source": "/", "Destination": "/host", "RW": True}]),
    ("5.7", "HostConfig.PortBindings", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80"}]}),
    ("5.9", "HostConfig.NetworkMode", "host"),
    ("5.10", "HostConfig.Memory", 0),
    ("5.12", "HostConfig.ReadonlyRootfs", False),
    ("5.13", "HostConfig.PortBindings", {"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("5.13", "HostConfig.PortBindings", {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}),  # noqa: S104
    ("5.14", "HostConfig.RestartPolicy", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ("5.14", "HostConfig.RestartPolicy", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("5.15", "HostConfig.PidMode", "host"),
    ("5.16", "HostConfig.IpcMode", "host"),
    ("5.17", "HostConfig.Devices", [{"PathOnHost": "/dev/fuse"}]),
    ("5.19", "Mounts", [{"Type": "bind", "Source": "/srv", "Destination": "/srv", "Propagation": "rshared"}]),
    ("5.20", "HostConfig.UTSMode", "host"),
    ("5.21", "HostConfig.SecurityOpt", ["no-new-privileges", "seccomp=unconfined"]),
    ("5.21", "HostConfig.SecurityOpt", ["no-new-privileges", "seccomp:unconfined"]),
    ("5.24", "HostConfig.CgroupParent", "/custom"),
    ("5.25", "HostConfig.SecurityOpt", []),
    ("5.26", "Config.Healthcheck", {"Test": ["NONE"]}),
    ("5.26", "Config", {}),
    ("5.28", "HostConfig.PidsLimit", 0),
    ("5.28", "HostConfig.PidsLimit", None),
    ("5.29", "HostConfig.NetworkMode", "default"),
    ("5.30", "HostConfig.UsernsMode", "host"),
    ("5.31", "Mounts", [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/s", "RW": False}]),
]


def with_value(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, key = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    target[key] = value
    return doc


@pytest.mark.parametrize(("check", "path", "value"), BREAKS)
def test_each_weakness_is_one_warning_of_its_check(check: str, path: str, value: Any) -> None:
    findings = container_audit.audit([with_value(hardened(), path, value)])
    assert [(f.container, f.check) for f in findings] == [("redis", check)]
    assert findings[0].reason


def test_a_cpu_limit_is_any_of_nanocpus_quota_or_shares() -> None:
    base = with_value(hardened(), "HostConfig.NanoCpus", 0)
    assert [f.check for f in container_audit.audit([base])] == ["5.11"]
    assert container_audit.audit([with_value(base, "HostConfig.CpuQuota", 50000)]) == []
    assert container_audit.audit([with_value(base, "HostConfig.CpuShares", 512)]) == []


def test_read_only_mounts_of_host_directories_are_allowed() -> None:
    mounts = [{"Type": "bind", "Source": s, "Destination": "/h" + s, "RW": False} for s in ("/", "/proc", "/sys")]
    assert container_audit.audit([with_value(hardened(), "Mounts", mounts)]) == []


def test_an_accepted_warning_is_reported_with_its_reason_and_not_counted() -> None:
    docs = [hardened("redis"), with_value(hardened("edge-proxy"), "HostConfig.NetworkMode", "host")]
    findings = container_audit.audit(docs, {"edge-proxy": {"5.9": "engine restarts"}, "redis": {"5.9": "unused"}})
    assert [(f.container, f.check, f.accepted) for f in findings] == [("edge-proxy", "5.9", "engine restarts")]
    assert container_audit.counted(findings) == []
    # Accepting a check for one container accepts nothing of another.
    findings = container_audit.audit(docs, {"redis": {"5.9": "wrong container"}})
    assert [f.check for f in container_audit.counted(findings)] == ["5.9"]


def test_an_acceptance_for_every_container_yields_to_a_container_s_own() -> None:
    docs = [with_value(hardened(name), "HostConfig.PidsLimit", 0) for name in ("redis", "edge-proxy")]
    findings = container_audit.audit(docs, {"*": {"5.28": "all"}, "edge-proxy": {"5.28": "the edge's own"}})
    assert [(f.container, f.accepted) for f in findings] == [("redis", "all"), ("edge-proxy", "the edge's own")]


def test_the_table_counts_each_container_and_the_total() -> None:
    docs = [
        hardened("redis"),
        with_value(with_value(hardened("prometheus"), "HostConfig.Memory", 0), "HostConfig.PidsLimit", 0),
    ]
    text = container_audit.table(docs, container_audit.audit(docs))
    assert "| redis | 0 | - | - |" in text
    assert "| prometheus | 2 | 5.10, 5.28 | - |" in text
    assert text.splitlines()[-1] == "| **all 2** | **2** | | |"


def test_main_exits_1_while_a_warning_is_left_and_0_when_all_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = json.dumps([with_value(hardened("node-exporter"), "HostConfig.PidMode", "host")])
    assert container_audit.main([], io.StringIO(docs)) == 1
    assert "node-exporter: CIS 5.15: shares the host's process namespace" in capsys.readouterr().out
    accept = tmp_path / "accept.json"
    accept.write_text(json.dumps({"node-exporter": {"5.15": "process metrics"}}))
    assert container_audit.main(["--accept", str(accept)], io.StringIO(docs)) == 0
    assert "(accepted: process metrics)" in capsys.readouterr().out
    assert container_audit.main(["--json"], io.StringIO(docs)) == 1
    assert json.loads(capsys.readouterr().out)[0]["check"] == "5.15"
