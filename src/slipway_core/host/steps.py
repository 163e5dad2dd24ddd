"""The rollout's steps on a host, in order: begin (lock, skip-check), image, backup, migrate, start, health, switch,
drain, record. Each step is a method of Rollout (the new colour's containers: colours.py); STEPS maps contract.STEPS
to them (no lookup by name elsewhere).

`begin` decides once what is left (`todo`); `advance` runs the steps it is asked for, in order, skipping those the
run did already (a re-run after a crash between two steps repeats nothing). Any failure before the switch removes
the new colour and leaves the live one serving; a failure after it switches back (proxy.switch_over).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from slipway_core import contract, release_rules
from slipway_core.host import disk, prepare, publish, releases, workers
from slipway_core.host.colours import Colours
from slipway_core.host.docker import running
from slipway_core.host.proxy import Confirm, ProxyError
from slipway_core.host.release import config_hash, public
from slipway_core.host.run import Failed
from slipway_core.host.system import Background, write_json


class Rollout(Colours):
    """One service's rollout (or rollback) on this host, for one run: its steps."""

    # ----------------------------------------------------------------------------------------------- begin
    def live_release(self) -> tuple[dict[str, Any] | None, str]:
        """The live release if its container runs healthy and the proxy routes it; else (None, why)."""
        live = self.store.live()
        if not live:
            return None, "no live release recorded"
        for name in self.containers(live["colour"], release_rules.replicas_of(live)):
            info = self.docker.inspect(name)
            if not running(info):
                return None, f"{name} is not running"
            ok, status = self.host.healthy(self.name, live["colour"], info)
            if not ok:
                return None, f"{name} is {status}"
            if (info or {}).get("Image") != live.get("image_id"):
                return None, f"{name} runs another image than recorded"
        if self.host.proxy is not None and release_rules.has_web(live) and self.host.proxy.live(self.name) != live[
                "colour"]:
            return None, f"the proxy does not route {self.name} to {live['colour']}"
        stopped = workers.not_running(self.name, live, self.docker.inspect)
        return (None, f"worker {stopped} is not running") if stopped else (live, "live and healthy")

    def compare(self) -> tuple[bool, str, dict[str, Any] | None, str | None]:
        """(unchanged, why, the live release, the wanted image's id on this host)."""
        current, why = self.live_release()
        want_id = self.docker.image_id(self.spec["image_ref"])
        same = (
            current is not None
            and want_id is not None
            and current.get("image_id") == want_id
            and current.get("config_hash") == config_hash(self.spec)
            and current.get("version") == self.spec["version"]
            and release_rules.replicas_of(current) == self.replicas
        )
        return same, why, current, want_id

    def plan(self) -> dict[str, Any]:
        """Check mode: what a deploy would do; no lock, no run record, no change."""
        same, why, current, _ = self.compare()
        return contract.result(
            self.name,
            "noop" if same else "planned",
            version=self.spec["version"],
            previous_version=(current or {}).get("version", ""),
            colour=(current or {}).get("colour", ""),
            run_id=self.run.run_id,
            message="unchanged" if same else f"would deploy {self.spec['version']} ({why})",
        )

    def begin(self, stale_after: float, force: bool, start_when_ready: bool, gate: bool = False) -> dict[str, Any]:
        """Lock, compare with the live release: noop, or continue with the steps left (`todo`). On the common path
        (the image here, no migration) `start_when_ready` starts the idle colour in this call; `gate` (the cluster
        rollout's begin) also passes its health gate, when the colour is settled: the other one than a live release,
        or the one the controller asked for (`first_colour`); an app host without either may begin again with
        another colour (cluster_rollout.verdict), so it starts in the start play."""
        spec, data = self.spec, self.run.data
        data.update(
            {"action": "deploy", "version": spec["version"], "image": spec["image_ref"], "release": public(spec)}
        )
        disk.check_upload(self.docker, self.store.paths.image_archive, spec)  # refused before the lock: nothing changed
        with self.run.phase("lock"):
            self.check_edge_servers("lock")
            self.lock.take(self.run.run_id, self.host.who, "deploy", spec["version"], stale_after, self.host.audit)
        with self.run.phase("skip-check"):
            state = self.store.state()
            live = state.get("live") or {}
            same, why, current, want_id = self.compare()
            data.update({"previous_version": live.get("version", ""), "config_hash": config_hash(spec)})
        if same and not force:
            self.lock.release(self.run.run_id)
            return self.run.answer(
                "noop",
                colour=live["colour"],
                previous_version=live["version"],
                todo=[],
                message=f"{spec['version']} is already live on {live['colour']} and healthy",
            )
        # An image whose migrations already ran here (a release kept here: live, kept or in the list) needs none: the
        # schema is at or past its head (expand/contract), and an older image's tool may not even know the newer
        # revisions. It keeps the Alembic head it was recorded with.
        prior = releases.recorded(state, want_id)
        migrate = bool(spec.get("migrate_command")) and prior is None
        if prior is not None and releases.head_of(prior):
            data["alembic_head"] = releases.head_of(prior)
        todo = [
            step
            for step, due in (
                ("image", want_id is None),
                ("backup", migrate and bool(spec.get("backup_db"))),
                ("migrate", migrate),
            )
            if due
        ]
        data.update(
            {
                "colour": contract.other_colour(live["colour"]) if live.get("colour") else publish.first_colour(spec),
                "todo": [*todo, "start", "health", "switch", "drain", "record"],
                "done": [],
                "reason": why if current is None else "the release differs from the live one",
                "upload": self.store.paths.image_archive if want_id is None else "",
            }
        )
        settled = bool(live.get("colour") or spec.get("first_colour"))
        if todo or not (start_when_ready or (gate and settled)):
            return self.run.answer(contract.CONTINUE)
        # The common path: start the idle colour in this same call (and gate it, when asked and its colour is settled).
        self.run.save()  # recovery must know the colour should this process die while starting it
        if gate and settled:
            return self.advance(["start", "health"])
        self.start()
        self.run.done("start")
        return self.run.answer(contract.CONTINUE)

    def advance(self, steps: list[str]) -> dict[str, Any]:
        """Run `steps` in order (those this run did already are skipped); the answer after `record` is final."""
        self.lock.heartbeat(self.run.run_id)
        for step in steps:
            if step not in self.run.data["done"]:
                self.lock.heartbeat(self.run.run_id, step)  # progress: a stale lock is one nobody touched
                STEPS[step](self)
                self.run.done(step)
        if "record" in self.run.data["done"]:
            return self.run.report()
        return self.run.answer(contract.CONTINUE)

    # ------------------------------------------------------------------------------- switch, drain, record
    def switch(self) -> None:
        """One call to the edge: switch, confirm the new version through it, drain the old colour. A worker-only
        release has nothing routed: its new workers passed their gate, so this only reads the schema revision."""
        proxy, spec = self.host.proxy, self.spec
        if not self.web:
            with self.run.phase("switch"):
                self.run.data["migration_revision"] = (
                    self.run.data.get("migration_revision") or prepare.revision(self.docker, spec))
            return
        if proxy is None:
            raise Failed(
                "switch",
                "no edge proxy runs on this host (its settings are missing); apply the edge_proxy role first",
                contract.EXIT_NEEDS_PERSON,
            )
        # The schema revision cannot change while this run holds the lock: read it during the switch.
        revision = Background(
            lambda: self.run.data.get("migration_revision") or prepare.revision(self.docker, self.spec)
        )
        check = Confirm(
            version=str(self.run.data.get("version") or spec["version"]),
            path=str(spec.get("confirm_path") or ""),
            tls=bool(spec.get("proxy_tls")),
            port=int(spec.get("proxy_port", 80)),
            attempts=int(spec.get("confirm_attempts", 25)),
        )
        try:
            with self.run.phase("switch"):
                moved = proxy.switch_over(
                    self.name,
                    self.colour,
                    check,
                    float(spec.get("switch_timeout", 15)),
                    float(spec.get("drain_timeout", 30)),
                    prepared=bool(self.run.data.get("proxy_prepared")),
                    verified=[str(a) for a in self.run.data.get("healthy_addresses") or [] if a],
                )
        except ProxyError as err:
            self.save_logs("switch")
            code = contract.EXIT_NEEDS_PERSON if err.code == 3 else contract.EXIT_FAILED
            if code == contract.EXIT_NEEDS_PERSON and proxy.live(self.name) == self.colour:
                self.run.data["needs_person"] = True  # the proxy routes it: removing it takes the service down
            else:
                self.discard_new()
            raise Failed("switch", f"slipway-proxy switch {self.name} {self.colour}: {err}", code) from err
        self.run.data["durations"]["switch"] = moved["switch"]
        self.run.add_duration("drain", moved["drain"])
        if moved["sessions_left"]:
            self.run.data["note"] = f"; drain timed out ({moved['sessions_left']} session(s) left)"
        self.run.data["migration_revision"] = revision.value()
        self.write_file_sd()

    def write_file_sd(self) -> None:
        directory = self.spec.get("file_sd_dir")
        if not directory or not os.path.isdir(directory) or not self.web:
            return
        targets = [
            {
                "targets": [f"{name}:{self.spec['port']}" for name in self.containers()],
                "labels": {"service": self.name, "colour": self.colour, "version": self.run.data["version"]},
            }
        ]
        write_json(os.path.join(directory, f"{self.name}.json"), targets, 0o644)

    def drain(self) -> None:
        """The old colour has no session left (switch_over waited): stop it gracefully; kept for a rollback."""
        old = contract.other_colour(self.colour)
        grace = float(self.spec.get("stop_grace_period", 30))
        with self.run.phase("drain"):
            old_workers = workers.stop_old(self)  # SIGTERM first: they finish the job in hand meanwhile
            aside = [self.set_aside(self.colour, r) for r in range(self.recorded_replicas("kept"))]
            set_aside = Background(lambda: self.remove_all(aside))
            for name in self.containers(old, self.recorded_replicas("live")):
                if self.docker.inspect(name) is not None:
                    self.docker.stop(name, grace)
            set_aside.value()
            workers.remove_set_aside(self)
            self.run.data["note"] = str(self.run.data.get("note", "")) + str(old_workers.value() or "")

    def record(self) -> None:
        """The new release is live: state.json, a history line, the lock released, the answer `deployed`."""
        data, spec = self.run.data, self.spec
        if not data.get("migration_revision") and spec.get("migration_revision"):
            # Across hosts the migration ran on the first app host, which read the revision: the controller says it.
            data["migration_revision"] = str(spec["migration_revision"])
        with self.run.phase("record"):
            state = self.store.state()
            live = state.get("live")
            if self.restarts_kept:
                kept = state.get("kept") or {}
                new_live = {
                    **kept,
                    "deployed_at": self.host.clock.iso(),
                    "run_id": self.run.run_id,
                    "migration_revision": data.get("migration_revision") or kept.get("migration_revision"),
                }
                outcome, verb = (
                    "rolled-back",
                    f"rolled back to {data['version']} on {self.colour} (from its kept container)",
                )
            else:
                new_live = {
                    "colour": self.colour,
                    "version": spec["version"],
                    "image": spec["image_ref"],
                    "image_id": (self.docker.inspect(self.first()) or {}).get("Image"),
                    "config_hash": data["config_hash"],
                    "migration_revision": data.get("migration_revision"),
                    # Its own Alembic head: the schema its migration left, or the rolled-back-to release's own.
                    "alembic_head": data.get("alembic_head") or data.get("migration_revision"),
                    "replicas": self.replicas,
                    "deployed_at": self.host.clock.iso(),
                    "run_id": self.run.run_id,
                    **{k: spec[k] for k in ("network", "port", "domain", "health_path") if k in spec},
                    **({"workers": spec["workers"]} if spec.get("workers") else {}),
                }
                outcome, verb = (
                    ("rolled-back", f"rolled back to {spec['version']} on {self.colour} (from its kept image)")
                    if data.get("to_release") else ("deployed", f"{spec['version']} is live on {self.colour}"))
            if (live or {}).get("run_id") != self.run.run_id:  # a re-run after a crash does not record twice
                keep = int(spec.get("keep_releases") or release_rules.KEEP_RELEASES_DEFAULT)
                # A host recorded before the list existed starts it from its live and kept releases.
                known = state.get("releases") or [r for r in (live, state.get("kept")) if isinstance(r, dict)]
                self.store.save_state(new_live, live, releases.remember(known, new_live, keep))
                self.run.history_line(outcome, new_live, live, self.host)
            previous = live if (live or {}).get("run_id") != self.run.run_id else state.get("kept")
            repository = str(new_live.get("image") or spec["image_ref"]).rpartition(":")[0]
            data["note"] = str(data.get("note", "")) + releases.prune_note(
                self.docker, self.store, repository, self.store.root)
        with self.run.phase("unlock"):
            self.lock.release(self.run.run_id)
        kept = f", {previous['version']} kept stopped on {previous['colour']}" if previous else ""
        self.run.answer(
            "deployed",
            previous_version=(previous or {}).get("version", ""),
            todo=[],
            message=verb + kept + str(data.get("note", "")),
        )


STEPS: dict[str, Callable[[Rollout], None]] = {
    "image": lambda r: prepare.image(r.docker, r.store, r.run, r.spec),
    "backup": lambda r: prepare.backup(r.run, r.spec),
    "migrate": lambda r: prepare.migrate(r.docker, r.store, r.run, r.spec),
    "start": Rollout.start,
    "health": Rollout.health,
    "switch": Rollout.switch,
    "drain": Rollout.drain,
    "record": Rollout.record,
}
assert tuple(STEPS) == contract.STEPS  # noqa: S101 - the table follows the contract's order
