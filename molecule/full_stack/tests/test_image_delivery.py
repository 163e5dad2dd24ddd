"""Image delivery for hosts without Docker Hub (runs after test_full_stack.py, on the same host): an image archive
shipped from the controller, and a pull from a private registry with a login that leaves no credentials behind.

slipway/notes-api:v2.1.0 is never preloaded on this host; the first test ships it as an archive, the second pushes
it to a registry on the host's loopback (tests/images/registry, htpasswd auth) and deploys it from there.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from passlib.hash import bcrypt
from scenario_tools import EDGE_ADDRESS

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE.parents[2] / "playbooks"
STATE = "/var/lib/slipway/services"
IMAGE = "slipway/notes-api:v2.1.0"
REGISTRY = "127.0.0.1:5000"
REG_USER = "deployer"
REG_PASSWORD = "fs-registry-pw-6c1e"  # noqa: S105  # pragma: allowlist secret
PROBE = (
    "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
    "c.request('GET','/version',headers={'Host':sys.argv[2]});print(c.getresponse().read().decode())"
)
DIAGNOSTIC_CONTAINERS = ["jotter-blue", "jotter-green", "slipway-test-registry"]


def services() -> dict[str, Any]:
    scenario = yaml.safe_load((HERE.parent / "molecule.yml").read_text(encoding="utf-8"))
    return copy.deepcopy(scenario["provisioner"]["inventory"]["host_vars"]["slipway-full_stack"]["slipway_services"])


def live(host: Any, service: str) -> dict[str, Any]:
    return dict(json.loads(host.check_output(f"cat {STATE}/{service}/state.json"))["live"])


def last_history(host: Any, service: str) -> dict[str, Any]:
    lines = host.check_output(f"cat {STATE}/{service}/history.jsonl").splitlines()
    return dict(json.loads(lines[-1]))


def served_version(host: Any, domain: str) -> str:
    ip = EDGE_ADDRESS
    out = host.check_output(f"python3 -c \"{PROBE}\" {ip} {domain}")
    return str(json.loads(out)["version"])


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"rc {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


def test_an_image_archive_from_the_controller_is_loaded_on_a_host_without_it(
    host: Any, run_playbook: Any, tmp_path: Path
) -> None:
    assert host.run(f"docker image inspect {IMAGE}").rc != 0, "the test needs a host without the image"
    archive = tmp_path / "notes-api-v2.1.0.tar"
    subprocess.run(["docker", "save", "--output", str(archive), IMAGE], check=True, timeout=300)
    result = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", "version=v2.1.0",
        extra_vars={"app_release_image_archives": {"jotter": str(archive)}},
    )
    assert result.returncode == 0, explain(result)
    assert live(host, "jotter")["version"] == "v2.1.0"
    assert served_version(host, "jotter.localhost") == "v2.1.0"
    assert "image" in last_history(host, "jotter")["durations"]
    assert host.run(f"docker image inspect {IMAGE}").rc == 0
    assert not host.file(f"{STATE}/jotter/image.tar").exists, "the loaded archive is removed"


def test_a_private_registry_pull_logs_in_and_leaves_no_credentials(host: Any, run_playbook: Any) -> None:
    # A registry on the host's loopback, with basic auth; the image pushed there under another name.
    host.run_expect([0], "mkdir -p /srv/registry-auth")
    entry = f"{REG_USER}:{bcrypt.using(rounds=5, ident='2y').hash(REG_PASSWORD)}"
    host.run_expect([0], f"printf '%s\\n' '{entry}' > /srv/registry-auth/htpasswd")
    host.run("docker rm -f slipway-test-registry")
    host.run_expect(
        [0],
        "docker run -d --name slipway-test-registry --network host -e REGISTRY_HTTP_ADDR=127.0.0.1:5000 "
        "-v /srv/registry-auth:/auth:ro slipway/test-registry:bookworm",
    )
    # Up when /v2/ answers at all (401 without credentials).
    ready = (
        "import urllib.request as u,urllib.error as e\n"
        "try: u.urlopen('http://127.0.0.1:5000/v2/')\nexcept e.HTTPError: pass"
    )
    host.run_expect([0], f'for i in $(seq 50); do python3 -c "{ready}" 2>/dev/null && exit 0; sleep 0.2; done; exit 1')
    pushed = f"{REGISTRY}/notes-api:v2.1.0"
    push = host.run(
        f"d=$(mktemp -d) && echo '{REG_PASSWORD}' | DOCKER_CONFIG=$d docker login -u {REG_USER} "
        f"--password-stdin {REGISTRY} && docker tag {IMAGE} {pushed} && DOCKER_CONFIG=$d docker push {pushed}; "
        f"rc=$?; rm -rf $d; docker rmi {pushed}; exit $rc"
    )
    assert push.rc == 0, push.stdout + push.stderr
    registry = services()
    registry["jotter"]["image"] = f"{REGISTRY}/notes-api"
    before = live(host, "jotter")

    # Without credentials the pull is refused: the rollout fails in its image phase and nothing changes.
    refused = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", "version=v2.1.0",
        extra_vars={"slipway_services": registry},
        env={"SLIPWAY_REGISTRY_USERNAME": "", "SLIPWAY_REGISTRY_PASSWORD": ""},
    )
    assert refused.returncode != 0, explain(refused)
    assert "rollout failed in phase image" in refused.stdout, explain(refused)
    assert "no SLIPWAY_REGISTRY_USERNAME" in refused.stdout, explain(refused)
    assert live(host, "jotter") == before
    assert served_version(host, "jotter.localhost") == before["version"]

    # With them: logged in for this pull only; deployed; the password is in no output and on no disk.
    deployed = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", "version=v2.1.0",
        extra_vars={"slipway_services": registry},
        env={"SLIPWAY_REGISTRY_USERNAME": REG_USER, "SLIPWAY_REGISTRY_PASSWORD": REG_PASSWORD},
    )
    assert deployed.returncode == 0, explain(deployed)
    now = live(host, "jotter")
    assert now["image"] == pushed and now["version"] == "v2.1.0"
    assert served_version(host, "jotter.localhost") == "v2.1.0"
    assert REG_PASSWORD not in deployed.stdout + deployed.stderr
    config = host.run("cat /root/.docker/config.json")
    assert REGISTRY not in config.stdout, "registry credentials were left in root's Docker config"
    leftovers = host.run("ls -d /tmp/slipway-docker-* 2>/dev/null")
    assert leftovers.stdout.strip() == "", leftovers.stdout
    host.run("docker rm -f slipway-test-registry")
