"""The registry's scheduled jobs (`jobs:` of a service, slipway.core.services): each refusal names the service, the
job and its field, and says what to write instead; a valid entry gets its defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_filter

from slipway_core import contract, job_rules

services_filter = load_filter("services")

SERVICE: dict[str, Any] = {"image": "registry.example.com/acme/notes", "version": "v1.0.0", "port": 8000,
                           "domain": "notes.example.com"}


def registry(jobs: Any, **others: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SERVICE)
    spec["jobs"] = jobs
    out = {"notes": spec}
    for name, more in others.items():
        out[name.replace("_", "-")] = {**copy.deepcopy(SERVICE), "domain": f"{name.replace('_', '-')}.example.com",
                                       "jobs": more}
    return out


def test_a_job_gets_its_default_timeout_and_a_service_without_jobs_none() -> None:
    [entry] = services_filter.services(registry({"nightly-report": {"schedule": "*-*-* 03:00:00",
                                                                     "command": ["python", "-m", "app.report"]}}))
    assert entry["jobs"] == [{"name": "nightly-report", "schedule": "*-*-* 03:00:00",
                              "command": ["python", "-m", "app.report"], "timeout": job_rules.TIMEOUT_DEFAULT}]
    [plain] = services_filter.services({"notes": SERVICE})
    assert plain["jobs"] == []


@pytest.mark.parametrize(("job", "where", "fix"), [
    ({"schedule": "every night", "command": ["true"]}, "nightly.schedule", "OnCalendar expression"),
    ({"schedule": "*-13-* 00:00", "command": ["true"]}, "nightly.schedule", "OnCalendar expression"),
    ({"schedule": "daily", "command": []}, "nightly.command", "non-empty list of strings"),
    ({"schedule": "daily", "command": "python -m app.report"}, "nightly.command", "non-empty list of strings"),
    ({"schedule": "daily", "command": ["python", 3]}, "nightly.command", "non-empty list of strings"),
    ({"schedule": "daily", "command": ["true"], "timeout": 0}, "nightly.timeout", "whole seconds from 1 to 86400"),
    ({"schedule": "daily", "command": ["true"], "timeout": 86401}, "nightly.timeout", "from 1 to 86400"),
    ({"schedule": "daily", "command": ["true"], "timeout": "60"}, "nightly.timeout", "from 1 to 86400"),
    ({"schedule": "daily", "command": ["true"], "user": "root"}, "nightly.user", "a job has schedule, command"),
    ("daily", "nightly", "must be a map with schedule, command"),
])
def test_a_bad_job_is_refused_naming_the_service_the_job_and_the_field(job: Any, where: str, fix: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        services_filter.services(registry({"nightly": job}))
    assert str(error.value).startswith(f"slipway_services['notes'].jobs: {where}")
    assert fix in str(error.value)


def test_a_bad_job_name_or_jobs_value_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match=r"slipway_services\['notes'\].jobs: job 'Nightly_Report' is not "
                                                 r"a job name: use 2-40 lower-case"):
        services_filter.services(registry({"Nightly_Report": {"schedule": "daily", "command": ["true"]}}))
    with pytest.raises(AnsibleFilterError, match=r"\.jobs: must be a map of job name"):
        services_filter.services(registry([{"schedule": "daily"}]))


def test_two_services_whose_jobs_would_share_systemd_units_are_refused() -> None:
    job = {"schedule": "daily", "command": ["true"]}
    with pytest.raises(AnsibleFilterError, match=r"\['ab-cd'\]\.jobs\.ef: its systemd unit slipway-job-ab-cd-ef is "
                                                 r"also the unit of ab.s job cd-ef; rename one"):
        services_filter.services({"ab": {**SERVICE, "domain": "a.example.com", "jobs": {"cd-ef": job}},
                                  "ab-cd": {**SERVICE, "domain": "ab.example.com", "jobs": {"ef": job}}})


def test_the_schedule_pattern_without_systemd_analyze() -> None:
    for good in ("*-*-* 03:00:00", "*:*:0/15", "Mon..Fri 09:00", "hourly", "2026-12-03 10:00:00 UTC"):
        assert job_rules.check_schedule(good) == good
    for bad in ("", "tonight", "03:00 and later", "*-*-*", 15):
        with pytest.raises(contract.InputRefused, match="OnCalendar"):
            job_rules.check_schedule(bad)
