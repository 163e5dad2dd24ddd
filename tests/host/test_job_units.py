"""`slipway-release jobs sync` (slipway_core.host.job_units): the scheduled jobs' units follow the release in one
call, against a real unit directory, state directory and textfile directory under tmp_path and a fake systemctl
(fake_systemd.py) that holds systemd's rules (a unit starts only once loaded, enable/disable need its file).

Covered: install; a no-op changes nothing and asks systemd once; a schedule change restarts only that timer; a job
dropped; a service dropped from the registry (its units, jobs file and metrics go, another service's stay); a host
that is not the job host; a failed rollout (not listed: left as it was); check mode; bad input refused naming the
field before anything is touched; systemctl failing; the command through main.py's dispatch."""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fake_systemd import FakeSystemctl

from slipway_core import contract
from slipway_core.host import job_units, main

COMMAND = "/usr/local/sbin/slipway-release"
REPORT = {"name": "report", "schedule": "*-*-* 03:00:00", "command": ["python", "-m", "app.report"], "timeout": 600}
PURGE = {"name": "purge", "schedule": "hourly", "command": ["python", "-m", "app.purge"], "timeout": 3600}
RELEASE = {"network": "infra-shared-network", "resources": {"cpus": "0.5", "memory": "256m"},
           "container": {"read_only": True, "pids_limit": 256}, "pin_hosts": ["postgres"]}


class Host:
    """A host's directories under tmp_path, its fake systemctl, and `sync` (the command's entry, as main.py calls
    it)."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = str(tmp_path / "state")
        self.units = tmp_path / "units"
        self.textfile = tmp_path / "textfile"
        for path in (self.units, self.textfile):
            path.mkdir()
        self.systemctl = FakeSystemctl(str(self.units))

    def data(self, services: list[dict[str, Any]], registry: list[str] | None = None,
             job_host: bool = True) -> dict[str, Any]:
        return {"job_host": job_host, "unit_dir": str(self.units), "textfile_dir": str(self.textfile),
                "command": COMMAND, "services": services,
                "registry": registry if registry is not None else [s["service"] for s in services]}

    def sync(self, stdin: Any, plan: bool = False, capsys: Any = None,
             monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, dict[str, Any]]:
        assert capsys is not None and monkeypatch is not None
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin if isinstance(stdin, str) else json.dumps(stdin)))
        args = argparse.Namespace(action="sync", plan=plan)
        code = job_units.main(None, self.root, args, None, self.systemctl)  # type: ignore[arg-type]
        return code, json.loads(capsys.readouterr().out)

    def unit(self, name: str) -> str:
        return (self.units / name).read_text(encoding="utf-8")

    def jobs_file(self, service: str) -> Path:
        return Path(self.root) / service / "jobs.json"

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file under the host's directories: (mtime, content)."""
        out = {}
        for base in (self.root, str(self.units), str(self.textfile)):
            for folder, _, files in os.walk(base):
                for name in files:
                    path = os.path.join(folder, name)
                    out[path] = (os.stat(path).st_mtime_ns, Path(path).read_text(encoding="utf-8"))
        return out


def svc(name: str, *jobs: dict[str, Any]) -> dict[str, Any]:
    return {"service": name, "jobs": [copy.deepcopy(j) for j in jobs], "release": copy.deepcopy(RELEASE)}


@pytest.fixture
def host(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    h = Host(tmp_path)

    def sync(stdin: Any, plan: bool = False) -> tuple[int, dict[str, Any]]:
        return h.sync(stdin, plan, capsys, monkeypatch)

    h.run = sync  # type: ignore[attr-defined]
    return h


def test_install_writes_the_units_and_the_jobs_file_and_starts_each_timer(host: Any) -> None:
    code, answer = host.run(host.data([svc("jotter", REPORT, PURGE)]))

    assert code == 0 and answer["changed"] is True and answer["plan"] is False
    units = ["slipway-job-jotter-purge.service", "slipway-job-jotter-purge.timer",
             "slipway-job-jotter-report.service", "slipway-job-jotter-report.timer"]
    assert answer["installed"] == units and sorted(os.listdir(host.units)) == units
    timers = ["slipway-job-jotter-purge.timer", "slipway-job-jotter-report.timer"]
    assert answer["restarted"] == timers and answer["enabled"] == timers and answer["daemon_reload"] is True
    # The units, as the role's templates rendered them (same ExecStart, schedule settings, owner lines).
    service = host.unit("slipway-job-jotter-report.service")
    assert ("ExecStart=/usr/bin/systemd-run --no-block --collect --quiet --description=\"Slipway job jotter/report: "
            "one run\" --property=SyslogIdentifier=slipway-job-jotter-report --property=RuntimeMaxSec=720 -- "
            f"{COMMAND} --root {host.root} job run jotter report --trigger timer --textfile-dir {host.textfile}\n"
            ) in service
    assert "X-Slipway-Service=jotter\nX-Slipway-Job=report\n" in service and "Type=oneshot\n" in service
    timer = host.unit("slipway-job-jotter-report.timer")
    assert ("[Timer]\nOnCalendar=*-*-* 03:00:00\nPersistent=false\nRandomizedDelaySec=0\nAccuracySec=1s\n"
            "Unit=slipway-job-jotter-report.service\n\n[Install]\nWantedBy=timers.target\n") in timer
    assert timer.startswith("# Written by slipway-release jobs sync")
    assert oct(os.stat(host.units / "slipway-job-jotter-report.timer").st_mode & 0o777) == "0o644"
    # systemd: loaded the new files, then enabled and started each timer (with the content written).
    assert [c[0] for c in host.systemctl.calls] == ["show", "daemon-reload", "enable", "restart"]
    assert host.systemctl.enabled == set(timers) and host.systemctl.active == set(timers)
    assert host.systemctl.running["slipway-job-jotter-report.timer"] == timer
    data = json.loads(host.jobs_file("jotter").read_text(encoding="utf-8"))
    assert data == {"service": "jotter", "jobs": {"purge": PURGE, "report": REPORT}, "release": RELEASE}
    assert oct(os.stat(host.jobs_file("jotter")).st_mode & 0o777) == "0o600"


def test_a_second_sync_changes_nothing_and_asks_systemd_once(host: Any) -> None:
    data = host.data([svc("jotter", REPORT, PURGE)])
    host.run(data)
    before, calls = host.snapshot(), len(host.systemctl.calls)

    code, answer = host.run(data)

    assert code == 0 and answer["changed"] is False
    assert all(not answer[k] for k in ("installed", "removed", "restarted", "enabled", "started", "jobs_files"))
    assert host.systemctl.calls[calls:] == [("show", "--property=Id,ActiveState,UnitFileState",
                                             "slipway-job-jotter-purge.timer", "slipway-job-jotter-report.timer")]
    assert host.snapshot() == before  # not a file rewritten


def test_a_schedule_change_rewrites_and_restarts_only_that_timer(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT, PURGE)]))
    purge_before = host.systemctl.running["slipway-job-jotter-purge.timer"]
    calls = len(host.systemctl.calls)

    code, answer = host.run(host.data([svc("jotter", {**REPORT, "schedule": "Mon *-*-* 06:30"}, PURGE)]))

    assert code == 0 and answer["changed"] is True
    assert answer["installed"] == ["slipway-job-jotter-report.timer"]
    assert answer["restarted"] == ["slipway-job-jotter-report.timer"] and answer["enabled"] == []
    assert [c[0] for c in host.systemctl.calls[calls:]] == ["show", "daemon-reload", "restart"]
    assert "OnCalendar=Mon *-*-* 06:30\n" in host.systemctl.running["slipway-job-jotter-report.timer"]
    assert host.systemctl.running["slipway-job-jotter-purge.timer"] == purge_before  # not restarted
    assert answer["jobs_files"] == [str(host.jobs_file("jotter"))]


def test_a_timeout_change_restarts_the_timer_of_the_changed_service_unit(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT)]))
    code, answer = host.run(host.data([svc("jotter", {**REPORT, "timeout": 60})]))
    assert code == 0
    assert answer["installed"] == ["slipway-job-jotter-report.service"]
    assert answer["restarted"] == ["slipway-job-jotter-report.timer"]
    assert "--property=RuntimeMaxSec=180 " in host.unit("slipway-job-jotter-report.service")


def test_a_dropped_job_is_stopped_and_disabled_then_removed(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT, PURGE)]))
    calls = len(host.systemctl.calls)

    code, answer = host.run(host.data([svc("jotter", REPORT)]))

    assert code == 0 and answer["changed"] is True
    gone = [str(host.units / "slipway-job-jotter-purge.service"), str(host.units / "slipway-job-jotter-purge.timer")]
    assert answer["removed"] == gone and answer["stopped"] == ["slipway-job-jotter-purge.timer"]
    assert sorted(os.listdir(host.units)) == ["slipway-job-jotter-report.service", "slipway-job-jotter-report.timer"]
    # disable --now ran while its file existed (the fake refuses otherwise), then a reload; report untouched
    assert [c[0] for c in host.systemctl.calls[calls:]] == ["show", "disable", "daemon-reload"]
    assert "slipway-job-jotter-purge.timer" not in host.systemctl.active | host.systemctl.enabled
    assert sorted(json.loads(host.jobs_file("jotter").read_text(encoding="utf-8"))["jobs"]) == ["report"]


def test_a_service_gone_from_the_registry_loses_its_units_jobs_file_and_metrics(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT), svc("mailer", PURGE), svc("notes", REPORT)]))
    (host.textfile / "slipway_jobs_mailer.prom").write_text("# metrics\n", encoding="utf-8")
    (host.textfile / "slipway_jobs_jotter.prom").write_text("# metrics\n", encoding="utf-8")
    history = Path(host.root) / "mailer" / "history.jsonl"
    history.write_text("{}\n", encoding="utf-8")

    # This run rolls out notes only; mailer left the registry; jotter is in it but not rolled out.
    code, answer = host.run(host.data([svc("notes", REPORT)], registry=["jotter", "notes"]))

    assert code == 0 and answer["changed"] is True
    assert answer["stopped"] == ["slipway-job-mailer-purge.timer"]
    assert answer["removed"] == [str(host.units / "slipway-job-mailer-purge.service"),
                                 str(host.units / "slipway-job-mailer-purge.timer"), str(host.jobs_file("mailer")),
                                 str(host.textfile / "slipway_jobs_mailer.prom")]
    assert not host.jobs_file("mailer").exists() and history.exists()  # its record of what ran stays
    assert sorted(os.listdir(host.units)) == ["slipway-job-jotter-report.service", "slipway-job-jotter-report.timer",
                                              "slipway-job-notes-report.service", "slipway-job-notes-report.timer"]
    assert (host.textfile / "slipway_jobs_jotter.prom").exists() and host.jobs_file("jotter").exists()
    assert "slipway-job-jotter-report.timer" in host.systemctl.active


def test_on_a_host_that_is_not_the_job_host_the_units_and_jobs_file_go(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT)]))
    calls = len(host.systemctl.calls)

    code, answer = host.run(host.data([svc("jotter", REPORT)], job_host=False))

    assert code == 0 and answer["changed"] is True
    assert os.listdir(host.units) == [] and not host.jobs_file("jotter").exists()
    assert [c[0] for c in host.systemctl.calls[calls:]] == ["disable", "daemon-reload"]  # nothing wanted: no query
    code, again = host.run(host.data([svc("jotter", REPORT)], job_host=False))
    assert (code, again["changed"]) == (0, False) and len(host.systemctl.calls) == calls + 2  # no call at all


def test_a_service_not_listed_keeps_its_units_as_they_were(host: Any) -> None:
    """A failed rollout: the controller leaves the service out; its jobs run on against the release that serves."""
    host.run(host.data([svc("jotter", REPORT, PURGE)]))
    before = host.snapshot()
    code, answer = host.run(host.data([], registry=["jotter"]))
    assert (code, answer["changed"]) == (0, False) and host.snapshot() == before


def test_check_mode_says_what_would_change_and_changes_nothing(host: Any) -> None:
    host.run(host.data([svc("jotter", REPORT, PURGE), svc("mailer", PURGE)]))
    before, calls, changes = host.snapshot(), len(host.systemctl.calls), len(host.systemctl.changes())

    code, answer = host.run(host.data([svc("jotter", {**REPORT, "schedule": "daily"})], registry=["jotter"]),
                            plan=True)

    assert code == 0 and answer["plan"] is True and answer["changed"] is True
    assert answer["installed"] == ["slipway-job-jotter-report.timer"]
    assert answer["restarted"] == ["slipway-job-jotter-report.timer"]
    assert answer["stopped"] == ["slipway-job-jotter-purge.timer", "slipway-job-mailer-purge.timer"]
    assert str(host.jobs_file("mailer")) in answer["removed"]
    assert host.snapshot() == before
    assert len(host.systemctl.changes()) == changes
    assert [c[0] for c in host.systemctl.calls[calls:]] == ["show"]
    code, fresh = host.run(host.data([svc("jotter", REPORT, PURGE), svc("mailer", PURGE)]), plan=True)
    assert (code, fresh["changed"]) == (0, False)


def good() -> dict[str, Any]:
    return {"job_host": True, "unit_dir": "/etc/systemd/system", "textfile_dir": "/var/lib/prometheus/node-exporter",
            "command": COMMAND, "registry": ["jotter"], "services": [svc("jotter", REPORT)]}


def changed(where: str = "", **over: Any) -> dict[str, Any]:
    """good() with `over` in the input (where ''), its service (where 'service') or its job (where 'job')."""
    data = good()
    target = {"": data, "service": data["services"][0], "job": data["services"][0]["jobs"][0]}[where]
    target.update(over)
    return data


BAD = [
    ("not JSON", "{", "jobs sync: stdin: not JSON"),
    ("not an object", [], "jobs sync: stdin: must be a JSON object"),
    ("missing", {k: v for k, v in good().items() if k != "unit_dir"}, "jobs sync: unit_dir: missing"),
    ("job_host", changed(job_host="yes"), "jobs sync: job_host: 'yes' is not true or false"),
    ("unit_dir", changed(unit_dir="etc/systemd"), "jobs sync: unit_dir: 'etc/systemd' is not usable: give an absolute"),
    ("command with a space", changed(command="/usr/local/sbin/slipway release"), "jobs sync: command: "),
    ("textfile_dir with %", changed(textfile_dir="/var/%h"), "jobs sync: textfile_dir: '/var/%h' is not usable"),
    ("registry", changed(registry=["Jotter"]), "jobs sync: registry[0]: service 'Jotter' is not a service name"),
    ("service", changed("service", service="x"), "jobs sync: services[0].service: service 'x' is not a service name"),
    ("not in registry", changed(registry=["notes"]), "jobs sync: services[0].service: jotter is not in registry"),
    ("twice", {**good(), "services": [svc("jotter"), svc("jotter")]}, "jobs sync: services[1].service: jotter is "
                                                                      "listed twice"),
    ("jobs", changed("service", jobs={"report": REPORT}), "jobs sync: services[0].jobs: {'report': "),
    ("timeout", changed("job", timeout=0), "jobs sync: services[0].jobs[0]: report.timeout: timeout 0 is not valid"),
    ("schedule", changed("job", schedule="every day\nExecStart=/bin/sh"), "services[0].jobs[0]: report.schedule:"),
    ("job name", changed("job", name="Report"), "jobs sync: services[0].jobs[0]: job 'Report' is not a job name"),
    ("command", changed("job", command="python -m x"), "jobs sync: services[0].jobs[0]: report.command:"),
    ("a secret in release", changed("service", release={**RELEASE, "secret_env": {"A": "b"}}),
     "jobs sync: services[0].release.secret_env: not a setting of a job's container; give only network, resources"),
    ("release", changed("service", release=None), "jobs sync: services[0].release: None is not a map of network"),
]


@pytest.mark.parametrize(("case", "stdin", "message"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_input_is_refused_naming_the_field_before_anything_is_touched(host: Any, case: str, stdin: Any,
                                                                          message: str) -> None:
    (host.units / "slipway-job-old-x.timer").write_text("[Unit]\nX-Slipway-Service=old\n", encoding="utf-8")
    before = host.snapshot()
    code, answer = host.run(stdin)
    assert code == contract.EXIT_USAGE, case
    assert message in answer["error"] and answer["changed"] is False
    assert host.systemctl.calls == [] and host.snapshot() == before


def test_two_services_sharing_a_unit_are_refused() -> None:
    data = {**good(), "registry": ["ab", "ab-cd"],
            "services": [svc("ab", {**REPORT, "name": "cd-ef"}), svc("ab-cd", {**REPORT, "name": "ef"})]}
    with pytest.raises(contract.InputRefused, match=r"services\.ab-cd\.jobs\.ef: its unit slipway-job-ab-cd-ef is "
                                                    r"also ab's"):
        job_units.check_input(data, "/var/lib/slipway/services")


def test_a_unit_that_names_no_service_is_left_alone(host: Any) -> None:
    (host.units / "slipway-job-hand-made.timer").write_text("[Timer]\nOnCalendar=daily\n", encoding="utf-8")
    code, answer = host.run(host.data([svc("jotter", REPORT)], registry=["jotter"]))
    assert code == 0 and (host.units / "slipway-job-hand-made.timer").exists()
    assert all("hand-made" not in path for path in answer["removed"])


def test_systemctl_failing_is_exit_1_with_what_was_done(host: Any) -> None:
    host.systemctl.fail = "restart"
    code, answer = host.run(host.data([svc("jotter", REPORT)]))
    assert code == contract.EXIT_FAILED
    assert "systemctl restart slipway-job-jotter-report.timer failed" in answer["error"]
    assert answer["installed"] == ["slipway-job-jotter-report.service", "slipway-job-jotter-report.timer"]
    assert (host.units / "slipway-job-jotter-report.timer").exists()
    host.systemctl.fail = ""
    code, again = host.run(host.data([svc("jotter", REPORT)]))  # the next deploy finishes the job
    assert code == 0 and again["installed"] == [] and again["started"] == ["slipway-job-jotter-report.timer"]
    assert host.systemctl.active == {"slipway-job-jotter-report.timer"}


def test_through_the_release_command(host: Any, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`slipway-release --root R jobs sync [--plan]` dispatches here with the real systemctl's stand-in."""
    monkeypatch.setattr(job_units, "systemctl", host.systemctl)
    data = json.dumps(host.data([svc("jotter", REPORT)]))
    for plan, changed_files in ((["--plan"], False), ([], True)):
        monkeypatch.setattr("sys.stdin", io.StringIO(data))
        code = main.main(["--root", host.root, "jobs", "sync", *plan], prog="/usr/local/sbin/slipway-release")
        answer = json.loads(capsys.readouterr().out)
        assert (code, answer["changed"], answer["plan"]) == (0, True, bool(plan))
        assert (host.units / "slipway-job-jotter-report.timer").exists() is changed_files


def test_the_real_systemctl_reports_its_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "systemctl"
    fake.write_text("#!/bin/sh\necho \"Unit $2 not found.\" >&2\nexit 5\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(job_units.SystemdError, match=r"systemctl start x.timer failed \(exit 5\): Unit x.timer not"):
        job_units.systemctl("start", "x.timer")
    assert job_units.systemctl.__name__ == "systemctl"
