#!/bin/sh
# Storage under /var/lib/registry; basic auth from /auth/htpasswd when the file is there.
set -eu
config=/tmp/registry.yml
cat > "$config" <<YAML
version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: /var/lib/registry}
  delete: {enabled: true}
http:
  addr: ${REGISTRY_HTTP_ADDR:-:5000}
YAML
if [ -f /auth/htpasswd ]; then
  printf 'auth:\n  htpasswd: {realm: slipway-test, path: /auth/htpasswd}\n' >> "$config"
fi
exec /usr/bin/docker-registry serve "$config"
