"""Helpers shared by the scenarios' testinfra tests (importable: pytest puts molecule/ on sys.path for
molecule/conftest.py)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PROJECT = Path(__file__).resolve().parent.parent
# The edge proxy runs on the host's network: inside a host, it answers on 127.0.0.1.
EDGE_ADDRESS = "127.0.0.1"
# The type of conftest.py's run_playbook fixture (this module's run_playbook).
RunPlaybook = Callable[..., subprocess.CompletedProcess[str]]
SLIPWAY = str(Path(sys.executable).parent / "slipway")  # this virtualenv's CLI (its Ansible beside it)


def inventory_path() -> str:
    """Molecule's inventory of this scenario's instances."""
    found = os.environ.get("MOLECULE_INVENTORY_FILE")
    return found or str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory")


def make_project(root: Path, variables: dict[str, Any], container: str) -> Path:
    """An operations repository whose environment `local` is the host container `container`, with `variables` as its
    group_vars (for the `slipway` CLI, which reaches it through docker)."""
    (root / "inventories/local/group_vars/local").mkdir(parents=True)
    for name in ("playbooks", "roles", "collections", "scripts"):
        (root / name).symlink_to(PROJECT / name)
    cfg = (PROJECT / "ansible.cfg").read_text(encoding="utf-8")
    (root / "ansible.cfg").write_text(
        "\n".join("inventory = inventories/local/hosts.yml" if line.startswith("inventory =") else line
                  for line in cfg.splitlines()) + "\n", encoding="utf-8")
    hosts = {"all": {"children": {"local": {"hosts": {container: {
        "ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}}}}}}
    (root / "inventories/local/hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    (root / "inventories/local/group_vars/local/main.yml").write_text(yaml.safe_dump(variables), encoding="utf-8")
    return root


def cli_environment() -> dict[str, str]:
    """The CLI's environment: this one without Molecule's Ansible settings (ANSIBLE_CONFIG would point the CLI at the
    project's own inventories, whose `local` host is the demo's), CI's variables or any SLIPWAY_ secret."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SLIPWAY_", "ANSIBLE_", "MOLECULE_"))}


def slipway(project: Path, *args: str, timeout: int = 600, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """`slipway <args> --project-dir project` in cli_environment(), with `env` added (a workflow's GITHUB_ files)."""
    env = cli_environment() | (env or {})
    return subprocess.run([SLIPWAY, *args, "--project-dir", str(project)] if "--" not in args else
                          [SLIPWAY, *args[:args.index("--")], "--project-dir", str(project), *args[args.index("--"):]],
                          capture_output=True, text=True, env=env, check=False, timeout=timeout)


def run_playbook(
    playbook: str | Path,
    *args: str,
    extra_vars: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a playbook against this scenario's instances (Molecule's own inventory), as converge does.

    `extra_vars` go through a temporary JSON file, never the command line; `env` is added to the environment.
    Output is captured so a test can assert on the messages it prints.
    """
    inventory = inventory_path()
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        **(env or {}),
    }
    cmd = ["ansible-playbook", "-i", inventory, str(playbook), *args]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as extra:
        if extra_vars is not None:
            json.dump(extra_vars, extra)
            extra.flush()
            cmd += ["--extra-vars", "@" + extra.name]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=PROJECT)


def inspect(host: Any, name: str) -> dict[str, Any]:
    """`docker inspect` of a container on the testinfra host ({} when there is none)."""
    out = host.run(f"docker inspect {name}")
    return dict(json.loads(out.stdout)[0]) if out.rc == 0 else {}


def container_logs(host: Any, name: str) -> str:
    """A container's docker logs on the testinfra host, output and errors."""
    return str(host.run(f"docker logs {name} 2>&1").stdout)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll `check` every 0.5 s until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout:g}s"
        time.sleep(0.5)


def counted_run(record: dict[str, Any], start: int, end: int, tick: int) -> bool:
    """A timer run of one of the ticks start..end (by tick_of's rule: a run as late as the next tick still counts)."""
    return record.get("trigger") == "timer" and start <= tick_of(float(record["started"]), tick) <= end


def tick_of(started: float, tick: int) -> int:
    """A timer run's tick: the last one at or before its start (0.5 s for the clocks of host and record). A run starts
    after its tick, late by what starting it costs: seconds on a host starved of CPU (the CI runs the scenarios and
    the unit tests on two cores), so rounding to the nearest tick counted one late run for the next tick."""
    return int((started + 0.5) // tick) * tick


def recap_changed(output: str, host: str) -> int:
    """The `changed=` count of `host` in a playbook's last PLAY RECAP."""
    found = re.findall(rf"{re.escape(host)}\s*:.*?changed=(\d+)", output)
    assert found, output[-3000:]
    return int(found[-1])


def service_entry(image: str, domain: str, uses: str) -> dict[str, Any]:
    """A minimal services-registry entry that uses one data service (`uses`: postgres or redis)."""
    return {"image": image, "version": "v1", "port": 80, "domain": domain, uses: True}


def assert_refused_before_any_change(run: subprocess.CompletedProcess[str], instance: str, *expected: str) -> None:
    """The playbook failed, its output names every `expected` text, and it changed nothing on `instance`."""
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    for text in expected:
        assert text in output, output[-3000:]
    assert recap_changed(output, instance) == 0

def san(name: str) -> x509.GeneralName:
    """A subject alternative name: an IP address when `name` is one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def self_signed_bundle(names: list[str]) -> tuple[str, str]:
    """A throwaway certificate for `names` (DNS names, or IP addresses), valid for a day: (PEM bundle = certificate +
    key, PEM certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_pem + key_pem, cert_pem


# A bounded client loop run inside a host, no retries: every failure counts. Half its threads keep their connection
# alive, half open a new one per request. Stops at the stop file or after `seconds`; prints counts, the first
# errors and each request's time as JSON. Each thread pauses 0.1 s between requests: about 57 requests a second in
# all on an idle demo host, 0.2 of a core for the client, the edge and the app together, where 0.02 s took 245 a
# second and 0.7 of a core (measured 2026-12-04, 30 s each) from the two the whole `make test` shares. The benches
# (bench/) keep the heavy load: they are where zero failed requests is measured at rate.
LOAD_CLIENT = """
import http.client, json, os, sys, threading, time
edge, seconds, stop_file, domain, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
lock, counts, errors, windows = threading.Lock(), {"requests": 0, "failed": 0}, [], []
deadline = time.monotonic() + seconds

def worker(keepalive):
    conn, i = None, 0
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        path, i = paths[i % len(paths)], i + 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(edge, 80, timeout=10)
            conn.request("GET", path, headers={"Host": domain})
            resp = conn.getresponse(); resp.read()
            problem = None if resp.status == 200 else f"{path}: HTTP {resp.status}"
        except Exception as err:
            problem, conn = f"{path}: {type(err).__name__}: {err}", None
        with lock:
            counts["requests"] += 1
            windows.append(time.time())
            if problem:
                counts["failed"] += 1; errors.append(problem)
        if not keepalive and conn is not None:
            conn.close(); conn = None
        time.sleep(0.1)

threads = [threading.Thread(target=worker, args=(k,)) for k in (True,) * 3 + (False,) * 3]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({**counts, "errors": errors[:10], "times": windows}))
"""


@dataclass
class Load:
    """LOAD_CLIENT running in a host (testinfra's `host`), writing under `work`."""

    host: Any
    work: str

    def stop(self) -> dict[str, Any]:
        """Stop the clients and return their counts (requests, failed, errors, times)."""
        self.host.run_expect([0], f"touch {self.work}/stop")
        self.host.run_expect(
            [0], f"for i in $(seq 100); do [ -s {self.work}/out.json ] && exit 0; sleep 0.2; done; exit 1")
        result: dict[str, Any] = json.loads(self.host.check_output(f"cat {self.work}/out.json"))
        return result


def start_load(host: Any, work: str, domain: str, paths: list[str], seconds: int) -> Load:
    """Start LOAD_CLIENT in the background inside `host`, against the edge at EDGE_ADDRESS for `domain`."""
    data = base64.b64encode(LOAD_CLIENT.encode()).decode()
    host.run_expect([0], f"rm -rf {work} && mkdir -p {work} && echo {data} | base64 -d > {work}/load.py")
    argv = " ".join(shlex.quote(arg) for arg in [EDGE_ADDRESS, str(seconds), f"{work}/stop", domain, *paths])
    host.run_expect([0], f"nohup python3 {work}/load.py {argv} > {work}/out.json 2>&1 &")
    return Load(host, work)


# Where a failed test is written down for `make test`'s summary: Molecule's output wraps and colours pytest's own
# lines, so a CI that shows only the end of a lane's log would not name the test that failed.
FAILED_TESTS = PROJECT / ".cache" / "failed-tests.log"


def record_failure(
    scenario: str, nodeid: str, when: str, text: str, *, path: Path = FAILED_TESTS, lines: int = 25
) -> None:
    """Append one failed test (its scenario, id and phase) and the last `lines` lines of its report to `path`."""
    tail = "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"FAILED {scenario}: {nodeid} ({when})\n{tail}\n")
