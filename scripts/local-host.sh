#!/usr/bin/env bash
# The demo environment's "VM": a systemd + Docker container named slipway-local on this machine, reached by
# Ansible through the Docker connection (inventories/local). Same options as the Molecule hosts.
#   scripts/local-host.sh up      start it (reuse it when it runs)
#   scripts/local-host.sh load-images [IMAGE...]   load the images the local inventory names (infra stand-ins
#                                       from inventories/local/group_vars/local/images.yml, the sample service's
#                                       versions), or the IMAGEs given, into it; it has no registry
#   scripts/local-host.sh down    remove it, its inner Docker data and its release state
#   scripts/local-host.sh status
set -euo pipefail

NAME=${SLIPWAY_LOCAL_HOST:-slipway-local}
IMAGE=${SLIPWAY_LOCAL_HOST_IMAGE:-slipway/test-host:bookworm}
# The edge proxy's port 80 inside the host, published on loopback only; set empty: nothing published (a host
# without an edge, scripts/demo_cluster.py).
HTTP_PORT=${SLIPWAY_LOCAL_HTTP_PORT-8080}
# scripts/demo_cluster.py: a user-defined network (it makes it) and the host's fixed address on it; unset: Docker's
# default bridge.
NETWORK=${SLIPWAY_LOCAL_NETWORK:-}
ADDRESS=${SLIPWAY_LOCAL_ADDRESS:-}

up() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = "true" ]; then
    echo "local host $NAME is running"
  else
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    if docker volume inspect "$NAME-docker" >/dev/null 2>&1 && ! docker volume inspect "$NAME-slipway" >/dev/null 2>&1; then
      # Made by an earlier local-host.sh that kept no release state: its databases would not match any.
      docker volume rm "$NAME-docker" >/dev/null
      echo "removed $NAME-docker: it has no release state beside it (an earlier layout); starting fresh"
    fi
    local options=()
    [ -z "$HTTP_PORT" ] || options+=(-p "127.0.0.1:${HTTP_PORT}:80")
    [ -z "$NETWORK" ] || options+=(--network "$NETWORK")
    [ -z "$ADDRESS" ] || options+=(--ip "$ADDRESS")
    docker run -d --name "$NAME" --hostname "$NAME" "${options[@]}" \
      --cgroupns host --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$NAME-docker:/var/lib/docker" \
      -v "$NAME-slipway:/var/lib/slipway" \
      --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
      "$IMAGE" /sbin/init >/dev/null
    echo "started local host $NAME${HTTP_PORT:+ (HTTP on 127.0.0.1:${HTTP_PORT})}"
  fi
  for _ in $(seq 1 60); do
    state=$(docker exec "$NAME" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return 0 ;; esac
    sleep 1
  done
  echo "local host $NAME did not finish booting (systemctl is-system-running: $state)" >&2
  exit 1
}

load_images() { # [image...]: default, the local inventory's
  local here image wanted=("$@") missing=()
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ${#wanted[@]} -eq 0 ]; then
    wanted=($(sed -n 's/^[a-z_]*_image: //p' "$here/inventories/local/group_vars/local/images.yml") \
      $(bash "$here/tests/harness/build_sample.sh" --list))
  fi
  for image in "${wanted[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || {
      echo "image $image is missing on this machine: run make prepare" >&2; exit 1; }
  done
  if docker exec "$NAME" sh -c 'command -v docker' >/dev/null 2>&1; then
    for image in "${wanted[@]}"; do
      docker exec "$NAME" docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
    done
    load() { docker exec -i "$NAME" docker load >/dev/null; }
  else
    # No docker command yet (a fresh Debian 13 host: docker-cli comes with provisioning, which needs the images
    # first): the engine's API socket, through scripts/inner_engine.py and the host's python3.
    docker exec -i "$NAME" sh -c 'cat > /run/slipway-inner-engine.py' < "$here/scripts/inner_engine.py"
    # An assignment, not a process substitution: set -e stops here when the engine cannot be asked.
    local lacking
    lacking=$(docker exec "$NAME" python3 /run/slipway-inner-engine.py missing "${wanted[@]}")
    [ -z "$lacking" ] || mapfile -t missing <<< "$lacking"
    load() { docker exec -i "$NAME" python3 /run/slipway-inner-engine.py load >/dev/null; }
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    docker save "${missing[@]}" | load
    echo "loaded ${#missing[@]} image(s) into $NAME"
  fi
}

down() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$NAME-docker" "$NAME-slipway" >/dev/null 2>&1 || true
  echo "removed local host $NAME"
}

case "${1:-}" in
  up) up ;;
  load-images) shift; load_images "$@" ;;
  down) down ;;
  status) docker ps -a --filter "name=^${NAME}$" --format '{{.Names}}: {{.Status}}' ;;
  *) echo "usage: $0 up|load-images|down|status" >&2; exit 2 ;;
esac
