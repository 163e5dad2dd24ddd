#!/bin/sh
# Same behaviour as the official image's entrypoint: options alone mean "haproxy OPTIONS", and haproxy runs
# in master-worker mode in the foreground.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi
exec "$@"
