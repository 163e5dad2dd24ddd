#!/usr/bin/env bash
# TEST IMAGE entrypoint: the subset of the official redis image's docker-entrypoint.sh that Slipway uses
# (docs/test-images.md): a first argument ending in .conf means redis-server; the server runs as user redis
# (uid 999) and /data is made the redis user's when it is not.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
umask 0077
exec "$@"
