#!/bin/sh
# Runs mayfly with the given command. When MAYFLY_CA_PASSPHRASE_FILE names a file (a Docker
# or Kubernetes secret), its content becomes MAYFLY_CA_PASSPHRASE, so the passphrase never
# has to sit in the container's environment definition.
set -eu
if [ -n "${MAYFLY_CA_PASSPHRASE_FILE:-}" ]; then
    MAYFLY_CA_PASSPHRASE="$(cat "$MAYFLY_CA_PASSPHRASE_FILE")"
    export MAYFLY_CA_PASSPHRASE
fi
exec /usr/local/bin/mayfly "$@"
