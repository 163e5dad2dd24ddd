"""A stand-in for systemctl over a real unit directory (tmp_path): it records every call and keeps what systemd
would know, so a test fails when the host program gets systemd's rules wrong:

- systemd knows a unit file as of its last `daemon-reload` (or its start): starting or restarting a unit whose
  file it never loaded fails as systemd's "Unit ... not found", and a restart runs the content loaded then;
- `enable` and `disable` need the unit's file on disk (systemd's "Unit file ... does not exist");
- `show` answers Id, ActiveState and UnitFileState per unit, in one block each, blocks separated by a blank line.
"""

from __future__ import annotations

import os

from slipway_core.host.job_units import SystemdError


class FakeSystemctl:
    def __init__(self, unit_dir: str) -> None:
        self.unit_dir = unit_dir
        self.calls: list[tuple[str, ...]] = []
        self.loaded: dict[str, str] = {}
        self.enabled: set[str] = set()
        self.active: set[str] = set()
        self.running: dict[str, str] = {}  # unit -> the content it was (re)started with
        self.fail = ""  # a verb that fails (systemd refusing)
        self._load()

    def _load(self) -> None:
        names = os.listdir(self.unit_dir) if os.path.isdir(self.unit_dir) else []
        self.loaded = {}
        for name in names:
            if name.endswith((".timer", ".service")):
                with open(os.path.join(self.unit_dir, name), encoding="utf-8") as handle:
                    self.loaded[name] = handle.read()

    def _file(self, unit: str) -> None:
        if not os.path.isfile(os.path.join(self.unit_dir, unit)):
            raise SystemdError(f"Failed to enable unit: Unit file {unit} does not exist.")

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        verb, units = args[0], [a for a in args[1:] if not a.startswith("-")]
        if verb == self.fail:
            raise SystemdError(f"systemctl {' '.join(args)} failed (exit 1): refused by the fake")
        verbs = {"show": self._show, "daemon-reload": self._reload, "enable": self._enable,
                 "disable": self._disable, "start": self._start, "restart": self._start}
        if verb not in verbs:
            raise AssertionError(f"the fake systemctl does not know {args}")
        return verbs[verb](units, "--now" in args or verb == "restart")

    def _reload(self, units: list[str], now: bool) -> str:
        self._load()
        return ""

    def _show(self, units: list[str], now: bool) -> str:
        def state(unit: str) -> str:
            return "enabled" if unit in self.enabled else "disabled" if unit in self.loaded else ""

        return "\n".join(f"Id={u}\nActiveState={'active' if u in self.active else 'inactive'}\n"
                         f"UnitFileState={state(u)}\n" for u in units)

    def _enable(self, units: list[str], now: bool) -> str:
        for unit in units:
            self._file(unit)
            self.enabled.add(unit)
        return ""

    def _disable(self, units: list[str], now: bool) -> str:
        for unit in units:
            self._file(unit)
            self.enabled.discard(unit)
            if now:
                self.active.discard(unit)
                self.running.pop(unit, None)
        return ""

    def _start(self, units: list[str], restart: bool) -> str:
        for unit in units:
            if unit not in self.loaded:
                raise SystemdError(f"Failed to start {unit}: Unit {unit} not found.")
            if restart or unit not in self.active:
                self.running[unit] = self.loaded[unit]
            self.active.add(unit)
        return ""

    def changes(self) -> list[tuple[str, ...]]:
        """The calls that change something (what check mode and a no-op must not make)."""
        return [c for c in self.calls if c[0] != "show"]
