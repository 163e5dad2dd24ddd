"""The host program: what runs on each host during a rollout (docs/rollout.md). Modules, one job each:

docker.py    the Docker engine: API socket for reads, the docker CLI for changes (containers, images)
store.py     a service's release state, history, run records and logs: the only writer
lock.py      the per-service deploy lock
health.py    the one health gate (and HTTP checks)
proxy.py     the edge proxy (HAProxy's runtime API): switch, confirm, drain in one call
run.py       one run's record: phases, durations, its result
steps.py     the rollout's steps (image, backup, migrate, start, health, switch, drain, record) and begin
recovery.py  after a failure or a crash: finish, unlock, roll back to the kept release
queries.py   status and history
main.py      the two commands, slipway-release and slipway-proxy, as dispatch tables
"""
