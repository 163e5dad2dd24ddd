"""The cluster rollout when an edge is also an app host (docs/runbook.md, "Move from one VM to three": the VM stays
the edge and, until step 5, an app host beside the new ones), through the real deploy.yml (ansible-playbook, no host
touched): every host runs on the controller (the local connection) with the host programs pointed at fakes that record
each call and answer as slipway-release and slipway-proxy do. The edge's switch must not forget what that host
answered as an app host: before the fix, its switch record replaced its begin record, the verdict after the switch
said it "did not answer in phase begin", the edge switched back and every app host removed the new colour (the move's
step 4 failed, with 502s through the edge while it happened; bench/move-to-three.md).

With two edges, one whose switch fails: the edge that switched switches back, every app host removes the new colour,
and the result names the edge and the phase (every edge routes the new colour, or none).
"""

from __future__ import annotations

import json
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
if "batch" in argv:  # slipway-release batch: each call run as this program with its own stdin, as the real one does
    import subprocess
    results, given = [], json.load(sys.stdin)
    for call in given["calls"]:
        done = subprocess.run([sys.argv[0], *call["argv"]], input=call.get("stdin", ""), capture_output=True,
                              text=True, check=False)
        results.append({{"argv": call["argv"], "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}})
        if done.returncode and not given.get("keep_going"):
            break
    print(json.dumps({{"results": results}}))
    sys.exit(next((r["rc"] for r in results if r["rc"]), 0))
if "--root" in argv:
    root = argv[argv.index("--root") + 1]
    host, base = os.path.basename(root), os.path.dirname(root)
else:
    host, base = "edge", {base!r}
if name == "fake-slipway-proxy":  # each edge's settings file is in its own directory, named after the host
    here = os.path.dirname(argv[argv.index("--settings") + 1])
    command = next(a for a in argv if a in ("switch-over", "switch", "addresses"))
    with open(os.path.join(base, "calls.log"), "a") as log:
        log.write(f"{{os.path.basename(here)}} proxy {{command}} "
                  f"{{' '.join(argv[argv.index(command) + 1:argv.index(command) + 3])}}\\n")
    if command == "addresses":
        print(json.dumps({{"slots": {{"api": 0}}}}))
    if command == "switch-over" and os.path.exists(os.path.join(here, "fail-switch-over")):
        print("slipway-proxy: api: v1.0.0 did not answer through this edge", file=sys.stderr)
        sys.exit(1)
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
    if host == "app-1":  # the first app host read the schema's revision (as after the migration)
        answer.update(migration_revision="0042")
elif command == "run" and os.path.exists(os.path.join(root, "fail-drain")):
    print(json.dumps({{**answer, "result": "failed", "failed_phase": "drain", "message": "docker stop timed out"}}))
    sys.exit(1)
elif command == "run":
    answer.update(result="deployed")
    spec = json.load(sys.stdin)
    with open(os.path.join(base, "calls.log"), "a") as log:
        log.write(f"{{host}} was told migration_revision={{spec.get('migration_revision', '')}}\\n")
elif command == "finish":
    answer.update(result="failed", failed_phase="begin", message="stopped")
else:  # record-rollout: the hosts' results it was given, and whether it was asked again
    given = json.load(sys.stdin)
    with open(os.path.join(base, "records.jsonl"), "a") as log:
        log.write(json.dumps({{"host": host, **given}}) + "\\n")
    answer = {{}}
print(json.dumps(answer))
"""


def fake_cluster(tmp_path: Path, children: str) -> tuple[Path, Path]:
    """The project with the hosts `children` on the local connection and the fake host programs; each host's state
    (and each edge's settings) under the second path returned, where calls.log records every call."""
    root = project(tmp_path, hosts_yml(children))
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
        "app_release_proxy_settings": str(base) + "/{{ inventory_hostname }}/slipway-proxy.json",
        "app_release_jobs_unit_dir": str(tmp_path / "units"),
        "app_release_file_sd_dir": str(tmp_path / "targets"),
        "app_release_state_dir": str(base) + "/{{ inventory_hostname }}",
    }), encoding="utf-8")
    (tmp_path / "targets").mkdir()
    return root, base


def test_an_edge_that_is_also_an_app_host_switches_once_and_every_app_host_records_the_release(
        tmp_path: Path) -> None:
    root, base = fake_cluster(tmp_path, cluster(edge="app-1", apps=("app-1", "app-2")))

    result = run(root, "deploy.yml", "-e", "service=api", "-e", "version=v1.0.0")

    calls = (base / "calls.log").read_text(encoding="utf-8").splitlines()
    assert result.returncode == 0, result.stdout[-5000:]
    assert calls.count("app-1 proxy switch-over api green") == 1, calls  # the one edge switched, and never back
    assert not [c for c in calls if " proxy switch " in c], calls
    assert "app-1 run drain,record" in calls
    assert "app-2 run drain,record" in calls
    assert not [c for c in calls if " finish" in c], calls  # no app host removed the new colour
    assert "did not answer in phase begin" not in result.stdout
    # the rollout's one history record, on the first app host (in the settle's last call, a batch with jobs sync)
    assert [c for c in calls if "record-rollout" in c] == ["app-1 record-rollout"], calls
    # every app host records the schema revision the first app host read (its record, from what it registered)
    told = [c for c in calls if " was told " in c]
    assert sorted(told) == ["app-1 was told migration_revision=0042", "app-2 was told migration_revision=0042"], calls


def test_when_one_of_two_edges_fails_its_switch_the_other_switches_back_and_no_app_host_keeps_the_new_colour(
        tmp_path: Path) -> None:
    children = cluster(edge="edge-1").replace("      edge-1: {slipway_private_address: 10.0.1.10}\n",
                                              "      edge-1: {slipway_private_address: 10.0.1.10}\n"
                                              "      edge-2: {slipway_private_address: 10.0.1.15}\n")
    assert "edge-2" in children
    root, base = fake_cluster(tmp_path, children)
    (base / "edge-2").mkdir()
    (base / "edge-2" / "fail-switch-over").touch()

    result = run(root, "deploy.yml", "-e", "service=api", "-e", "version=v1.0.0")
    calls = (base / "calls.log").read_text(encoding="utf-8").splitlines()
    assert result.returncode != 0, result.stdout[-5000:]
    assert "edge-1 proxy switch-over api green" in calls and "edge-2 proxy switch-over api green" in calls, calls
    assert calls.count("edge-1 proxy switch api blue") == 1, calls  # back to the colour that serves
    assert not [c for c in calls if c.startswith("edge-2 proxy switch ")], calls  # it never switched
    assert not [c for c in calls if " run drain,record" in c], calls  # nobody drained the old colour
    assert "app-1 finish" in calls and "app-2 finish" in calls, calls  # the new colour removed everywhere
    assert [c for c in calls if "record-rollout" in c] == ["app-1 record-rollout"], calls  # recorded, once
    assert "edge-2" in result.stdout and "switch" in result.stdout
    # The failing edge's switch shows as a failure the play went on after (its phase's progress line says failed),
    # the other edge's as none: before, both were ok (failed_when: false).
    recap = {line.split()[0]: line for line in result.stdout.splitlines() if " : ok=" in line}
    assert "ignored=1" in recap["edge-2"] and "ignored=0" in recap["edge-1"], recap


def test_an_app_host_whose_drain_fails_has_the_rollout_s_record_written_again_naming_it(tmp_path: Path) -> None:
    """The first app host writes the record in its settle call, naming every app host in phase settle while they
    settle; app-2's drain then fails (the release is live everywhere: the run goes on): the play after the settle
    writes the record again on app-1 with app-2's failure. On the common path that play has no host (test above)."""
    root, base = fake_cluster(tmp_path, cluster(edge="edge-1", apps=("app-1", "app-2")))
    (base / "app-2").mkdir()
    (base / "app-2" / "fail-drain").touch()

    result = run(root, "deploy.yml", "-e", "service=api", "-e", "version=v1.0.0")

    calls = (base / "calls.log").read_text(encoding="utf-8").splitlines()
    assert "app-1 run drain,record" in calls and "app-2 run drain,record" in calls, calls
    first, again = [json.loads(line) for line in (base / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (first["host"], first.get("again", False), again["host"], again["again"]) == ("app-1", False, "app-1", True)
    phases = {h["host"]: (h["phase"], h["result"]) for h in first["hosts"]}
    assert phases == {"app-1": ("settle", "ok"), "app-2": ("settle", "ok"), "edge-1": ("switch", "ok")}, first
    final = {h["host"]: (h["phase"], h["result"], h["message"]) for h in again["hosts"]}
    assert final == {"app-1": ("settle", "ok", ""), "app-2": ("drain", "failed", "docker stop timed out"),
                      "edge-1": ("switch", "ok", "")}, again
    assert "Record the rollout again" in result.stdout, result.stdout[-3000:]
