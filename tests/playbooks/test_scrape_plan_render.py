"""Monitoring across hosts, rendered from the inventory without touching a host (docs/topology.md): the monitoring
host's prometheus.yml lists every other host's node exporter, each edge's stats and the data host's exporters at
their private addresses; each other host publishes its exporters on its private address only; the edge's stats
listen there too; one VM renders as before (everything on Prometheus' 127.0.0.1, nothing published)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from test_topology_playbooks import PROJECT, cluster, hosts_yml, project, run

RENDER = f"""\
- name: Render what the prometheus and edge_proxy roles would on each host
  hosts: demo
  gather_facts: false
  tasks:
    - name: Load the roles' variables
      ansible.builtin.include_vars:
        file: "{{{{ item }}}}"
      loop:
        - {PROJECT}/roles/prometheus/defaults/main.yml
        - {PROJECT}/roles/prometheus/vars/main.yml
        - {PROJECT}/roles/edge_proxy/vars/main.yml
    - name: Write them
      ansible.builtin.copy:
        content: "{{{{ {{'config': lookup('template', '{PROJECT}/roles/prometheus/templates/prometheus.yml.j2'),
                      'published': _prometheus_exporters_published_ports,
                      'listen': _prometheus_exporters_listen,
                      'network_mode': _prometheus_exporters_network_mode,
                      'data_exporters': _prometheus_postgres_exporter_here and _prometheus_redis_exporter_here,
                      'stats': _edge_proxy_stats_private_address}} | to_json }}}}"
        dest: "{{{{ out }}}}/{{{{ inventory_hostname }}}}.json"
        mode: "0600"
      delegate_to: localhost
"""
EXTRA = ["-e", "vault_prometheus_web_password=render-only-pw", "-e", "vault_edge_proxy_stats_password=render-pw",
         "-e", "ansible_managed=managed"]


def rendered(tmp_path: Path, hosts: str) -> dict[str, dict[str, Any]]:
    root = project(tmp_path, hosts_yml(hosts))
    (root / "playbooks" / "render.yml").write_text(RENDER, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    result = run(root, "render.yml", "-e", f"out={out}", *EXTRA)
    assert result.returncode == 0, result.stdout + result.stderr
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in out.glob("*.json")}


def jobs(config: object) -> dict[str, list[str]]:
    loaded = yaml.safe_load(str(config))
    return {job["job_name"]: sorted(t for c in job.get("static_configs", []) for t in c["targets"])
            for job in loaded["scrape_configs"]}


def test_the_monitoring_host_scrapes_every_other_host_at_its_private_address(tmp_path: Path) -> None:
    found = rendered(tmp_path, cluster(monitoring="app-2"))
    scraped = jobs(found["app-2"]["config"])
    assert scraped["node"] == ["10.0.1.10:9100", "10.0.1.11:9100", "10.0.1.13:9100", "127.0.0.1:9100"]
    assert scraped["edge-proxy"] == ["10.0.1.10:8404"]  # no edge on app-2: only the remote one
    assert scraped["postgres"] == ["10.0.1.13:9187"]
    assert scraped["redis"] == ["10.0.1.13:9121"]
    assert found["app-2"]["published"] == {"node": [], "postgres": [], "redis": []}
    assert found["app-2"]["network_mode"] == "container:prometheus"
    assert found["app-2"]["data_exporters"] is False  # the data host runs them
    for name, address in (("edge-1", "10.0.1.10"), ("app-1", "10.0.1.11"), ("data-1", "10.0.1.13")):
        assert found[name]["published"]["node"] == [f"{address}:9100:9100"], name
        assert found[name]["listen"] == "0.0.0.0"  # noqa: S104 - inside its own namespace, published on the address above
        assert found[name]["network_mode"] == "infra-shared-network"
    assert found["data-1"]["data_exporters"] is True
    assert found["data-1"]["published"]["postgres"] == ["10.0.1.13:9187:9187"]
    assert found["edge-1"]["stats"] == "10.0.1.10"  # the edge's stats also on its private address
    assert found["app-2"]["stats"] == ""


def test_one_vm_scrapes_everything_on_prometheus_127_0_0_1(tmp_path: Path) -> None:
    found = rendered(tmp_path, "hosts:\n  vm-1: {}\n")["vm-1"]
    scraped = jobs(found["config"])
    assert scraped["node"] == ["127.0.0.1:9100"]
    assert scraped["postgres"] == ["127.0.0.1:9187"]
    assert scraped["redis"] == ["127.0.0.1:9121"]
    assert len(scraped["edge-proxy"]) == 1 and scraped["edge-proxy"][0].endswith(":8404")
    assert found["published"] == {"node": [], "postgres": [], "redis": []}
    assert found["listen"] == "127.0.0.1" and found["network_mode"] == "container:prometheus"
    assert found["data_exporters"] is True and found["stats"] == ""
