"""slipway_core.cluster: the published port of each replica of a colour on an app host, and the edge's servers per
(app host, replica); on one VM the edge's servers are exactly those of replicas on one host."""

from __future__ import annotations

import re
from typing import Any

import pytest

from slipway_core import cluster, contract, release_rules

LOCAL = {c: [f"172.30.2.{16 + i + (8 if c == 'green' else 0)}" for i in range(8)] for c in contract.COLOURS}


def test_the_published_port_follows_slot_colour_and_replica() -> None:
    assert cluster.published_port(0, "blue") == 20000
    assert cluster.published_port(0, "green", 7) == 20015
    assert cluster.published_port(3, "green", 1) == 20000 + 3 * 16 + 8 + 1
    ports = {cluster.published_port(s, c, r) for s in range(4) for c in contract.COLOURS for r in range(8)}
    assert len(ports) == 4 * 2 * 8  # never two replicas on one port


@pytest.mark.parametrize(("slot", "colour", "replica"), [(-1, "blue", 0), (0, "red", 0), (0, "blue", 8),
                                                          (True, "blue", 0)])
def test_no_port_outside_the_layout(slot: int, colour: str, replica: int) -> None:
    with pytest.raises(contract.InputRefused, match="no published port"):
        cluster.published_port(slot, colour, replica)


def test_a_binding_is_on_the_private_address_only() -> None:
    assert cluster.publish_binding("10.0.1.21", 2, "green", 0, 8000) == "10.0.1.21:20040:8000"
    with pytest.raises(contract.InputRefused, match=r"publish_address '0\.0\.0\.0/0' is not an IPv4 address"):
        cluster.publish_binding("0.0.0.0/0", 2, "green", 0, 8000)
    assert cluster.check_publish_address(None) == ""


def test_one_vm_the_edge_s_servers_are_the_replicas_on_its_host() -> None:
    members = cluster.edge_members("notes-api", 3, 8000, LOCAL, [])
    servers = release_rules.edge_servers("notes-api", 3)
    for colour in contract.COLOURS:
        assert [(m["name"], m["enabled_by"]) for m in members[colour]] == [
            (s["name"], s["enabled_by"]) for s in servers[colour]]
        assert [(m["address"], m["port"]) for m in members[colour]] == [(a, 8000) for a in LOCAL[colour][:3]]


def test_app_hosts_on_other_hosts_get_a_server_per_replica_at_their_published_port() -> None:
    remote = [{"index": 2, "address": "10.0.1.22", "slot": 0}, {"index": 3, "address": "10.0.1.23", "slot": 5}]
    members = cluster.edge_members("notes-api", 2, 8000, LOCAL, remote)
    assert [(m["name"], m["address"], m["port"], m["enabled_by"]) for m in members["green"]] == [
        ("notes-api-green", LOCAL["green"][0], 8000, ""),
        ("notes-api-green-2", LOCAL["green"][1], 8000, "SLIPWAY_LIVE_notes_api_R2"),
        ("notes-api-green.2", "10.0.1.22", 20008, "SLIPWAY_LIVE_notes_api_R3"),
        ("notes-api-green-2.2", "10.0.1.22", 20009, "SLIPWAY_LIVE_notes_api_R4"),
        ("notes-api-green.3", "10.0.1.23", 20000 + 5 * 16 + 8, "SLIPWAY_LIVE_notes_api_R5"),
        ("notes-api-green-2.3", "10.0.1.23", 20000 + 5 * 16 + 9, "SLIPWAY_LIVE_notes_api_R6"),
    ]
    # The edge on an app host tells its own replicas from the other hosts' by their names.
    assert [cluster.is_remote_server(m["name"]) for m in members["green"]] == [False, False, True, True, True, True]


def test_an_edge_on_no_app_host_routes_only_to_the_others_and_needs_one() -> None:
    members = cluster.edge_members("notes-api", 1, 8000, None, [{"index": 1, "address": "10.0.1.21", "slot": 1}])
    assert members["blue"] == [{"name": "notes-api-blue.1", "address": "10.0.1.21", "port": 20016, "enabled_by": ""}]
    with pytest.raises(contract.InputRefused, match="the edge has no server for notes-api"):
        cluster.edge_members("notes-api", 1, 8000, None, [])


def test_scrape_files_name_each_replica_of_the_live_colour_per_service_and_app_host() -> None:
    plan = [{"service": "api", "colour": "green", "version": "v2.0.0",
             "hosts": {"app-1": ["10.0.1.21:20056", "10.0.1.21:20057"], "app-2": ["10.0.1.22:20008"]}}]
    assert cluster.scrape_files(plan) == {
        "api.app-1.json": [{"targets": ["10.0.1.21:20056", "10.0.1.21:20057"],
                            "labels": {"service": "api", "colour": "green", "host": "app-1", "version": "v2.0.0"}}],
        "api.app-2.json": [{"targets": ["10.0.1.22:20008"],
                            "labels": {"service": "api", "colour": "green", "host": "app-2", "version": "v2.0.0"}}]}
    assert cluster.scrape_files([]) == {}


GOOD = {"service": "api", "colour": "blue", "version": "v1.0.0", "hosts": {"app-1": ["10.0.1.21:20000"]}}


@pytest.mark.parametrize(("plan", "message"), [
    ({"api": 1}, "give a list of"),
    ([{**GOOD, "hosts": ["app-1"]}], "is not {service, colour, version, hosts"),
    ([{**GOOD, "service": "../etc"}], "is not a service name"),
    ([{**GOOD, "colour": "red"}], "colour 'red' is not one of blue, green"),
    ([{**GOOD, "version": "latest"}], "is a moving tag"),
    ([{**GOOD, "hosts": {"../app-1": ["10.0.1.21:20000"]}}], "host '../app-1'"),
    ([{**GOOD, "hosts": {"app-1": []}}], "cannot be scraped"),
    ([{**GOOD, "hosts": {"app-1": ["app-1:20000"]}}], "scrape target 'app-1:20000' is not <IPv4 address>:<port>"),
    ([{**GOOD, "hosts": {"app-1": ["10.0.1.21:0"]}}], "is not <IPv4 address>:<port>"),
])
def test_scrape_files_refuse_what_cannot_be_scraped_or_named(plan: Any, message: str) -> None:
    with pytest.raises(contract.InputRefused, match=re.escape(message)):
        cluster.scrape_files(plan)


@pytest.mark.parametrize("host", ["cluster-app-1", "app-2.example.com", "10.213.0.12"])
def test_a_scrape_file_name_gives_back_its_service_and_host(host: str) -> None:
    name = cluster.scrape_file_name("notes-api", host)
    assert cluster.scrape_file_of(name) == ("notes-api", host)
    assert name in cluster.scrape_files([{"service": "notes-api", "colour": "blue", "version": "v1.0.0",
                                          "hosts": {host: ["10.213.0.12:18000"]}}])


@pytest.mark.parametrize("name", ["notes-api.json", "notes-api..json", ".app-1.json", "notes-api.app-1.yml",
                                  "notes-api.-app.json", "notes-api.app 1.json", "README"])
def test_other_file_names_are_no_hosts_scrape_file(name: str) -> None:
    assert cluster.scrape_file_of(name) is None
