#!/usr/bin/env bash
# Build the versions of the sample service (examples/notes-api) that the tests, the demo and the benchmark use.
# Idempotent: an image whose source hash label matches the current source and build args is kept.
#   --rebuild        rebuild even when an up-to-date image exists
#   --only TAG       build only this tag (repeatable), e.g. --only v2.0.0
#   --list           print the image references and exit
# Environment: SLIPWAY_BASE_IMAGE (default slipway/debian:bookworm; built by prepare.sh when missing),
#              SLIPWAY_SAMPLE_IMAGE (default slipway/notes-api),
#              SLIPWAY_SAMPLE_WHEELS=0 to let pip inside the build use its index instead of a wheelhouse.
# The pinned wheels are downloaded once on this machine (its pip settings, proxies and CA bundle apply; a
# cache under ~/.cache/slipway) and put into the build context, so the build itself needs no TLS to an index.
#
# Versions (tag: build args):
#   v1.0.0               migrations 0001 (notes table)
#   v2.0.0               migrations 0001-0002 (adds nullable notes.tags; the API shows tags)
#   v3.0.0-badhealth     like v2.0.0, but FAIL_HEALTH=1: /health always answers 503
#   v4.0.0-badmigration  migrations 0001-0003 with FAIL_MIGRATION=1: 0003 runs its DDL, then fails
#   v2.0.0-slow          like v2.0.0, but STARTUP_DELAY=5: listens only after 5 s
#   v2.1.0               like v2.0.0; never preloaded on a test host: the image delivery tests ship it to the
#                        host as an archive and through a private registry
#   v2.0.0-badworker     like v2.0.0, but FAIL_WORKER=1: its worker (python -m notes_api.worker) exits 1 at start
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../examples/notes-api" && pwd)
BASE_IMAGE=${SLIPWAY_BASE_IMAGE:-slipway/debian:bookworm}
IMAGE=${SLIPWAY_SAMPLE_IMAGE:-slipway/notes-api}

# tag|build args (space separated KEY=VALUE)
VERSIONS=(
  "v1.0.0|MIGRATION_HEAD=0001"
  "v2.0.0|MIGRATION_HEAD=0002"
  "v3.0.0-badhealth|MIGRATION_HEAD=0002 FAIL_HEALTH=1"
  "v4.0.0-badmigration|MIGRATION_HEAD=0003 FAIL_MIGRATION=1"
  "v2.0.0-slow|MIGRATION_HEAD=0002 STARTUP_DELAY=5"
  "v2.1.0|MIGRATION_HEAD=0002"
  "v2.0.0-badworker|MIGRATION_HEAD=0002 FAIL_WORKER=1"
)

rebuild=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild) rebuild=1 ;;
    --only) [ $# -ge 2 ] || { echo "build_sample.sh: --only needs a tag" >&2; exit 2; }; only+=("$2"); shift ;;
    --list) for v in "${VERSIONS[@]}"; do echo "$IMAGE:${v%%|*}"; done; exit 0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build_sample.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[build_sample %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local t
  for t in "${only[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

for t in "${only[@]}"; do
  found=0
  for v in "${VERSIONS[@]}"; do [ "${v%%|*}" = "$t" ] && found=1; done
  [ "$found" -eq 1 ] || { echo "build_sample.sh: unknown tag '$t'; known: $("$0" --list | tr '\n' ' ')" >&2; exit 2; }
done

docker info >/dev/null 2>&1 || bash "$here/prepare.sh" --no-images
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE missing; building it with prepare.sh"
  bash "$here/prepare.sh"
fi

# Everything that goes into the build context, plus the base image id.
source_hash=$(
  cd "$src"
  { find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    docker image inspect --format '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-16
)

# Wheelhouse for the pinned requirements, reused while requirements.txt is unchanged.
wheels=""
if [ "${SLIPWAY_SAMPLE_WHEELS:-1}" != 0 ]; then
  req_hash=$(sha256sum "$src/requirements.txt" | cut -c1-16)
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/slipway/notes-api-wheels/$req_hash-$(uname -m)"
  if [ ! -f "$wheels/.complete" ]; then
    log "downloading the pinned wheels into $wheels"
    rm -rf "$wheels" && mkdir -p "$wheels"
    # Markers are dropped: pip would evaluate them for this machine's Python, not the image's 3.11.2.
    sed -e 's/#.*//' -e 's/ *;.*//' -e '/^ *$/d' "$src/requirements.txt" >"$wheels.req"
    if python3 -m pip download -q --disable-pip-version-check --no-deps -r "$wheels.req" -d "$wheels" \
        --only-binary=:all: --implementation cp --python-version 3.11.2 --abi cp311 --abi abi3 --abi none \
        --platform "manylinux2014_$(uname -m)" --platform "manylinux_2_17_$(uname -m)" \
        --platform "manylinux_2_28_$(uname -m)" >"$wheels.log" 2>&1; then
      touch "$wheels/.complete"
    else
      log "pip download failed (see $wheels.log); the build will use pip's index instead"
      rm -rf "$wheels"; wheels=""
    fi
  fi
fi
context=$(mktemp -d /tmp/slipway-notes-api-ctx.XXXXXX)
trap 'rm -rf "$context"' EXIT
cp -a "$src/." "$context/"
find "$context" -name __pycache__ -prune -exec rm -rf {} +
if [ -n "$wheels" ]; then mkdir -p "$context/wheels" && cp "$wheels"/*.whl "$context/wheels/"; fi

built=0
for v in "${VERSIONS[@]}"; do
  tag=${v%%|*}
  args=${v#*|}
  wanted "$tag" || continue
  ref="$IMAGE:$tag"
  want_hash="$source_hash-$(printf '%s' "$args" | sha256sum | cut -c1-8)"
  have_hash=$(docker image inspect --format '{{index .Config.Labels "slipway.source-hash"}}' "$ref" 2>/dev/null || true)
  if [ "$rebuild" -eq 0 ] && [ "$have_hash" = "$want_hash" ]; then
    log "$ref is up to date"
    continue
  fi
  build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "APP_VERSION=$tag")
  for kv in $args; do build_args+=(--build-arg "$kv"); done
  log "building $ref ($args)"
  start=$(date +%s)
  if ! docker build "${build_args[@]}" --label "slipway.source-hash=$want_hash" -t "$ref" "$context" \
      >"$context.log" 2>&1; then
    tail -40 "$context.log" >&2
    echo "build_sample.sh: building $ref failed (full log above: $context.log)" >&2
    exit 1
  fi
  rm -f "$context.log"
  log "built $ref in $(( $(date +%s) - start )) s, $(docker image inspect --format '{{.Size}}' "$ref" \
    | awk '{printf "%.0f MB", $1 / 1000000}')"
  built=$((built + 1))
done
log "done ($built built)"
