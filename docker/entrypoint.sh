#!/bin/sh
# Runs mayfly with the container's arguments (default: serve). The CA passphrase comes from
# the file MAYFLY_CA_PASSPHRASE_FILE names (a Docker or Kubernetes secret), which mayfly reads
# itself, so the passphrase never has to sit in the container's environment definition.
set -eu
exec /usr/local/bin/mayfly "$@"
