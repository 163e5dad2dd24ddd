"""The cluster rollout when an edge is also an app host (docs/runbook.md, "Move from one VM to three": the VM stays
the edge and, until step 5, an app host beside the new ones), through the real deploy.yml (ansible-playbook, no host
touched): every host runs on the controller (the local connection) with the host programs pointed at fakes that record
each call and answer as slipway-release and slipway-proxy do. The edge's switch must not forget what that host
answered as an app host: before the fix, its switch record replaced its begin record, the verdict after the switch
said it "did not answer in phase begin", the edge switched back and every app host removed the new colour (the move's
step 4 failed, with 502s through the edge while it happened; bench/move-to-three.md).
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import yaml

from test_topology_playbooks import cluster, hosts_yml, project, run  # isort: skip

FAKE = """\
#!{python}
import json, os, sys
argv = sys.argv[1:]
name = os.path.basename(sys.argv[0])
if "--root" in argv:
    root = argv[argv.index("--root") + 1]
    host, base = os.path.basename(root), os.path.dirname(root)
else:
    host, base = "edge", {base!r}
if name == "fake-slipway-proxy":
    command = next(a for a in argv if a in ("switch-over", "switch", "addresses"))
    with open(os.path.join(base, "calls.log"), "a") as log:
        log.write(f"proxy {{command}} {{' '.join(argv[argv.index(command) + 1:argv.index(command) + 3])}}\\n")
    if command == "addresses":
        print(json.dumps({{"slots": {{"api": 0}}}}))
    sys.exit(0)
if argv[argv.index("--root") + 2:argv.index("--root") + 4] == ["jobs", "sync"]:
    print(json.dumps({{"changed": False, "plan": False}}))
    sys.exit(0)
command = next(a for a in argv if a in ("begin", "run", "finish", "record-rollout"))
steps = argv[argv.index("--steps") + 1] if "--steps" in argv else ""
with open(os.path.join(base, "calls.log"), "a") as log:
    log.write(f"{{host}} {{command}} {{steps}}\\n".rstrip() + "\\n")
answer = {{"service": "api", "version": "v1.0.0", "previous_version": "v0.9.0", "colour": "green"}}
if command == "begin":  # started and gated already (begin --gate-when-ready): the switch, drain and record are left
    answer.update(result="continue", todo=["switch", "drain", "record"])
elif command == "run":
    answer.update(result="deployed")
elif command == "finish":
    answer.update(result="failed", failed_phase="begin", message="stopped")
else:
    answer = {{}}
print(json.dumps(answer))
"""


def test_an_edge_that_is_also_an_app_host_switches_once_and_every_app_host_records_the_release(
        tmp_path: Path) -> None:
    root = project(tmp_path, hosts_yml(cluster(edge="app-1", apps=("app-1", "app-2"))))
    base = tmp_path / "hosts"
    base.mkdir()
    fakes = {}
    for name in ("fake-slipway-release", "fake-slipway-proxy"):
        fakes[name] = tmp_path / name
        fakes[name].write_text(FAKE.format(python=Path(sys.executable), base=str(base)), encoding="utf-8")
        fakes[name].chmod(fakes[name].stat().st_mode | stat.S_IEXEC)
    group_vars = root / "inventories" / "demo" / "group_vars" / "demo"
    group_vars.mkdir(parents=True)
    (group_vars / "main.yml").write_text(yaml.safe_dump({
        "ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": sys.executable,
        "app_release_command_path": str(fakes["fake-slipway-release"]),
        "edge_proxy_command_path": str(fakes["fake-slipway-proxy"]),
        "app_release_jobs_unit_dir": str(tmp_path / "units"),
        "app_release_file_sd_dir": str(tmp_path / "targets"),
        "app_release_state_dir": str(base) + "/{{ inventory_hostname }}",
    }), encoding="utf-8")
    (tmp_path / "targets").mkdir()

    result = run(root, "deploy.yml", "-e", "service=api", "-e", "version=v1.0.0")

    calls = (base / "calls.log").read_text(encoding="utf-8").splitlines()
    assert result.returncode == 0, result.stdout[-5000:]
    assert calls.count("proxy switch-over api green") == 1, calls  # the one edge switched, and never back
    assert not [c for c in calls if c.startswith("proxy switch ")], calls
    assert "app-1 run drain,record" in calls
    assert "app-2 run drain,record" in calls
    assert not [c for c in calls if " finish" in c], calls  # no app host removed the new colour
    assert "did not answer in phase begin" not in result.stdout
