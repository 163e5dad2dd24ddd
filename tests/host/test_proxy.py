"""proxy.py against the fake HAProxy runtime socket: parsing, switching, confirming, draining, reloading."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from fakes import PROXY_CONTAINER, PROXY_IP, Behaviour
from world import BACKEND, DOMAIN, SERVICE, World

from slipway_core import contract
from slipway_core.host.proxy import Confirm, ProxyError, load_settings, names_version

BLUE, GREEN = f"{SERVICE}-blue", f"{SERVICE}-green"


@pytest.fixture
def blue_live(world: World) -> World:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    return world


def start_green(world: World, version: str = "v2.0.0", behaviour: Behaviour | None = None) -> str:
    """v2 running and healthy on green, out of rotation (as after start + health); returns its address."""
    world.image(version, behaviour)
    world.begin(version, "r2")
    world.clock.sleep(0.05)
    return world.docker.boxes[GREEN].ip


def test_servers_as_haproxy_reports_them(blue_live: World) -> None:
    world = blue_live
    world.haproxy.servers[(BACKEND, BLUE)].sessions = 4
    world.haproxy.servers[(BACKEND, BLUE)].total = 90

    servers = world.proxy.servers(SERVICE)
    members = servers["blue"].pop("members")

    assert members == [servers["blue"]]  # one replica: the colour is its one server
    assert servers["blue"] == {"server": BLUE, "status": "UP", "admin": "ready", "admin_flags": [],
                               "address": world.docker.boxes[BLUE].ip, "port": 8000, "check": "L7OK",
                               "serving": True, "sessions": 4, "total_sessions": 90}
    # Drained, no container: its admin state is the admin bits', not read from a status that says only DOWN.
    assert (servers["green"]["status"], servers["green"]["admin"]) == ("DOWN", "drain")
    assert servers["green"]["admin_flags"] == ["config-maint", "forced-drain"]  # HAProxy's, `disabled` in the config
    world.proxy.set_server(SERVICE, "green", "state maint")
    assert world.proxy.servers(SERVICE)["green"]["admin"] == "maint"
    assert world.proxy.servers(SERVICE)["green"]["admin_flags"] == ["config-maint", "forced-maint"]


def test_runtime_errors(world: World) -> None:
    with pytest.raises(ProxyError) as unknown:
        world.proxy.servers("billing")
    assert unknown.value.code == 2
    assert "the proxy routes: notes-api" in str(unknown.value)

    world.proxy.settings["services"][SERVICE]["backend"] = "be_gone"
    with pytest.raises(ProxyError, match=r"the proxy has no backend be_gone: Can't find backend\."):
        world.proxy.servers(SERVICE)

    world.proxy.settings["admin_socket"] += ".missing"
    with pytest.raises(ProxyError) as unreachable:
        world.proxy.status(SERVICE)
    assert unreachable.value.code == 3


def test_a_refused_setting_is_an_error(world: World) -> None:
    world.haproxy.refuse[f"set server {BACKEND}/{BLUE} state ready"] = "Permission denied."

    with pytest.raises(ProxyError, match=r"refused 'set server be_notes_api/notes-api-blue state ready'"):
        world.proxy.set_server(SERVICE, "blue", "state ready")


def test_live_colour_is_persisted(world: World) -> None:
    assert world.proxy.live(SERVICE) is None

    world.proxy.persist(SERVICE, "green")

    assert world.proxy.live(SERVICE) == "green"
    with open(world.proxy.live_file(SERVICE), encoding="utf-8") as handle:
        assert f"setenv {contract.live_env_var(SERVICE)} green" in handle.read()
    with open(world.proxy.live_file(SERVICE), "w", encoding="utf-8") as handle:
        handle.write("global\n    setenv SLIPWAY_LIVE_notes_api purple\n")
    assert world.proxy.live(SERVICE) is None


def test_prepare_refuses_the_live_colour(blue_live: World) -> None:
    with pytest.raises(ProxyError, match="is the live colour; refusing"):
        blue_live.proxy.prepare(SERVICE, "blue")
    assert blue_live.routed() == [BLUE]


def test_switch_with_the_verified_address_marks_it_up_at_once(blue_live: World) -> None:
    world = blue_live
    ip = start_green(world)
    sleeps = world.clock.sleeps

    world.proxy.switch(SERVICE, "green", 5, prepared=True, verified=[ip])

    assert world.clock.sleeps == sleeps  # no wait for checks
    assert f"set server {BACKEND}/{GREEN} health up" in world.haproxy.commands
    assert world.routed() == [GREEN]
    assert world.proxy.servers(SERVICE)["blue"]["status"] == "DRAIN"
    assert world.proxy.live(SERVICE) == "green"


def test_switch_asks_an_unverified_server_as_haproxy_s_check_does_and_marks_it_up_at_once(blue_live: World) -> None:
    # An edge whose servers are on other hosts gets no verified address (the gate ran there): it asks each server
    # health_path with the service's Host at its address and port, and does not wait for `rise` checks.
    world = blue_live
    ip = start_green(world)
    sleeps, asked = world.clock.sleeps, len(world.http.asked)

    world.proxy.switch(SERVICE, "green", 5, prepared=False, verified=["10.0.0.99"])

    assert world.clock.sleeps == sleeps  # no wait for checks
    assert (ip, 8000, "/healthz", DOMAIN) in world.http.asked[asked:]
    assert f"set server {BACKEND}/{GREEN} health up" in world.haproxy.commands
    assert world.routed() == [GREEN]


def test_a_drained_colour_haproxy_reads_down_is_switched_through_the_gate_s_word(blue_live: World) -> None:
    """The colour to go live was drained (the old one of the rollout before) and HAProxy's checks have not yet seen
    its new container: status DOWN. It is still drained, not ready: the switch marks up what the gate verified
    instead of making it ready unchecked and waiting for `rise` checks."""
    world = blue_live
    ip = start_green(world)
    world.proxy.set_server(SERVICE, "green", "state drain")
    world.haproxy.servers[(BACKEND, GREEN)].forced = (False, world.clock.sleeps)  # DOWN until its next check
    assert world.proxy.servers(SERVICE)["green"]["status"] == "DOWN"
    sleeps = world.clock.sleeps

    world.proxy.switch(SERVICE, "green", 5, prepared=False, verified=[ip])

    assert world.clock.sleeps == sleeps  # no wait for checks
    commands = world.haproxy.commands
    assert commands.index(f"set server {BACKEND}/{GREEN} health up") < commands.index(
        f"set server {BACKEND}/{GREEN} state ready")
    assert world.routed() == [GREEN]
    assert world.proxy.live(SERVICE) == "green"


def test_switch_with_a_server_not_answering_200_waits_for_the_checks(blue_live: World) -> None:
    world = blue_live
    start_green(world, behaviour=Behaviour(path_status=503))
    sleeps = world.clock.sleeps

    world.proxy.switch(SERVICE, "green", 5, prepared=False, verified=["10.0.0.99"])

    assert world.clock.sleeps > sleeps  # HAProxy's own checks decided (the fake's pass at its next check)
    assert f"set server {BACKEND}/{GREEN} health up" not in world.haproxy.commands
    assert world.routed() == [GREEN]


def test_switch_timing_out_restores_the_server(blue_live: World) -> None:
    world = blue_live
    start_green(world)
    world.proxy.set_server(SERVICE, "green", "state maint")
    world.haproxy.unreachable.add(GREEN)
    started = world.clock.monotonic()

    with pytest.raises(ProxyError) as failed:
        world.proxy.switch(SERVICE, "green", 2)

    assert failed.value.code == 1
    assert "did not pass its health checks within 2s (status DOWN, check L4CON, address 0.0.0.0)" in str(failed.value)
    assert world.clock.monotonic() - started >= 2
    assert world.proxy.servers(SERVICE)["green"]["admin"] == "maint"  # as it was
    assert world.proxy.live(SERVICE) == "blue"
    assert world.routed() == [BLUE]


def test_a_server_going_down_while_made_live(blue_live: World) -> None:
    world = blue_live
    start_green(world)

    def fall(command: str) -> None:
        if command == f"set server {BACKEND}/{GREEN} state ready":
            world.haproxy.unreachable.add(GREEN)
            world.haproxy.servers[(BACKEND, GREEN)].forced = None  # its next check fails, whoever marked it up

    world.haproxy.on_command = fall

    with pytest.raises(ProxyError, match=r"was not serving once made live \(status DOWN, check L4CON\); "
                                         "notes-api-blue stays live"):
        world.proxy.switch(SERVICE, "green", 1, prepared=True)

    assert world.proxy.servers(SERVICE)["green"]["admin_flags"] == ["config-maint", "forced-drain"]
    assert world.proxy.live(SERVICE) == "blue"


def test_a_ready_colour_haproxy_has_not_checked_is_not_made_live(blue_live: World) -> None:
    """A colour already `ready` is switched without fresh checks; after a reload HAProxy reads it "UP 1/3", check
    "* INI", whatever runs behind it: the switch waits for a check to vouch for it, not for any UP."""
    world = blue_live
    start_green(world)
    world.proxy.set_server(SERVICE, "green", "state ready")
    world.haproxy.servers[(BACKEND, GREEN)].read_as = ("UP 1/3", "* INI")

    with pytest.raises(ProxyError, match=r"was not serving once made live \(status UP 1/3, check \* INI\)"):
        world.proxy.switch(SERVICE, "green", 1)

    assert world.proxy.live(SERVICE) == "blue"
    world.haproxy.servers[(BACKEND, GREEN)].read_as = None  # its first check passed
    world.proxy.switch(SERVICE, "green", 1)
    assert world.proxy.live(SERVICE) == "green"


def test_confirm_through_the_proxy(blue_live: World) -> None:
    world = blue_live
    assert world.proxy.confirm(SERVICE, Confirm("v1.0.0", "/version")) is None
    assert world.proxy.confirm(SERVICE, Confirm("anything")) is None  # no path: any 200 of health_path
    asked = world.http.asked[-1]
    assert asked == (PROXY_IP, 80, "/healthz", DOMAIN)

    why = world.proxy.confirm(SERVICE, Confirm("v9.9.9", "/version", tls=True, attempts=2))

    assert why is not None
    assert why.startswith("GET /version (Host notes.example.test) through the proxy answered 200")
    assert world.http.asked[-1][1] == 443
    assert len([a for a in world.http.asked if a[1] == 443]) == 2


def test_an_edge_on_the_host_s_network_is_confirmed_at_its_listening_address_and_ports(blue_live: World) -> None:
    """The edge role writes `address` and `https_port` (the edge has no container address on the host's network)."""
    world = blue_live
    world.proxy.settings.update({"address": PROXY_IP, "https_port": 8443})
    world.docker.boxes[PROXY_CONTAINER].ip = "not-an-address"  # never asked: host networking has no container IP

    assert world.proxy.address() == PROXY_IP
    assert world.proxy.confirm(SERVICE, Confirm("v1.0.0", "/version", port=8080)) is None
    assert world.http.asked[-1][:2] == (PROXY_IP, 8080)
    world.proxy.confirm(SERVICE, Confirm("v1.0.0", "/version", tls=True))
    assert world.http.asked[-1][:2] == (PROXY_IP, 8443)


def test_no_proxy_container_is_an_error(world: World) -> None:
    world.docker.stop(PROXY_CONTAINER, 0)

    with pytest.raises(ProxyError) as failed:
        world.proxy.address()

    assert failed.value.code == 3


def test_wait_drained_gives_the_sessions_left(blue_live: World) -> None:
    world = blue_live
    world.haproxy.servers[(BACKEND, BLUE)].sessions = 2
    started = world.clock.monotonic()

    assert world.proxy.wait_drained(SERVICE, "blue", 3) == 2
    assert world.clock.monotonic() - started >= 3

    world.clock.on_sleep.append(lambda: setattr(world.haproxy.servers[(BACKEND, BLUE)], "sessions", 0))
    assert world.proxy.wait_drained(SERVICE, "blue", 3) == 0


def test_switch_over_the_first_time_waits_for_no_drain(world: World) -> None:
    world.image("v1.0.0")
    world.begin("v1.0.0", "r1")
    world.clock.sleep(0.05)

    moved = world.proxy.switch_over(SERVICE, "blue", Confirm("v1.0.0", "/version"), 5, 30, prepared=True)

    assert moved["sessions_left"] == 0
    assert moved["drain"] == 0
    assert world.routed() == [BLUE]


def test_switch_over_reports_a_drain_that_timed_out(blue_live: World) -> None:
    world = blue_live
    ip = start_green(world)
    world.haproxy.servers[(BACKEND, BLUE)].sessions = 1

    moved = world.proxy.switch_over(SERVICE, "green", Confirm("v2.0.0", "/version"), 5, 2, prepared=True,
                                    verified=[ip])

    assert moved["sessions_left"] == 1
    assert moved["drain"] >= 2
    assert world.routed() == [GREEN]


def test_status_lists_the_serving_colours(blue_live: World) -> None:
    status = blue_live.proxy.status(SERVICE)

    assert (status["service"], status["backend"], status["live"], status["serving"]) == (SERVICE, BACKEND, "blue",
                                                                                         ["blue"])


@pytest.mark.parametrize(
    ("status", "check"),
    [
        ("UP 1/3", "* INI"),  # from a reload until its first check (an address with no container reads so ~2 s)
        ("UP", "INI"),  # the same with `fall 1`: full health is the start's health
        ("UP 2/3", "L7STS"),  # up, going down: its last check failed
    ],
)
def test_a_colour_haproxy_has_not_vouched_for_is_not_serving(blue_live: World, status: str, check: str) -> None:
    """The edge_proxy scenario's flake: `serving` named a colour its checks had not passed yet, so the request that
    followed met a server gone DOWN (HAProxy's 503 "No server is available")."""
    blue_live.haproxy.servers[(BACKEND, BLUE)].read_as = (status, check)

    status_now = blue_live.proxy.status(SERVICE)

    assert status_now["serving"] == []
    assert (status_now["servers"]["blue"]["status"], status_now["servers"]["blue"]["check"]) == (status, check)
    blue_live.haproxy.servers[(BACKEND, BLUE)].read_as = ("UP", "L7OK")  # checked, full health
    assert blue_live.proxy.status(SERVICE)["serving"] == ["blue"]


def test_reload_starts_a_new_worker(world: World) -> None:
    old = list(world.haproxy.workers)

    answer = world.proxy.reload(5)

    assert answer == {"reloaded": True, "old_workers": old, "workers": world.haproxy.workers}
    assert world.haproxy.workers != old
    assert ("kill", PROXY_CONTAINER, "USR2") in world.docker.calls
    assert ("command", "exec", PROXY_CONTAINER, *world.proxy.settings["check_command"]) in world.docker.calls
    assert "master: show proc" in world.haproxy.commands


def test_reload_waits_while_the_master_restarts(world: World) -> None:
    master = world.proxy.settings["master_socket"]

    def gone(container: str, signal: str) -> None:
        world.proxy.settings["master_socket"] = master + ".gone"  # re-executing: its socket is briefly gone
        world.clock.on_sleep.append(lambda: world.proxy.settings.update(master_socket=master))

    world.docker.kill_hooks.insert(0, gone)

    assert world.proxy.reload(5)["reloaded"] is True


def test_reload_failures(world: World) -> None:
    world.docker.command_answer = subprocess.CompletedProcess([], 1, "[ALERT] parsing haproxy.cfg\n", "")
    with pytest.raises(ProxyError, match=r"invalid, not reloading:\n\[ALERT\] parsing"):
        world.proxy.reload(5)

    world.docker.command_answer = subprocess.CompletedProcess([], 0, "Configuration file is valid\n", "")
    world.docker.kill_hooks.clear()  # the signal is lost: no new worker
    with pytest.raises(ProxyError, match="no new worker started within 1s"):
        world.proxy.reload(1)

    del world.docker.boxes[PROXY_CONTAINER]
    with pytest.raises(ProxyError) as failed:
        world.proxy.reload(1)
    assert failed.value.code == 3


def test_names_version() -> None:
    assert names_version(json.dumps({"version": "v2.0.0"}), "v2.0.0")
    assert not names_version(json.dumps({"version": "v2.0.0-slow"}), "v2.0.0")
    assert names_version(json.dumps({"build": "v2.0.0"}), "v2.0.0")
    assert names_version("notes-api v2.0.0", "v2.0.0")
    assert not names_version("notes-api", "v2.0.0")


def test_load_settings(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "slipway-proxy.json")
    with pytest.raises(ProxyError) as missing:
        load_settings(path)
    assert missing.value.code == 3
    assert "is the edge_proxy role applied?" in str(missing.value)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"container": "edge-proxy"}')
    assert load_settings(path) == {"container": "edge-proxy"}
