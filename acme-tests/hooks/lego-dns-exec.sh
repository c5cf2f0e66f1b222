#!/bin/sh
# lego --dns exec with EXEC_PATH=<this file>: lego calls `present <fqdn> <value>` and
# `cleanup <fqdn> <value>`, the FQDN ending with a dot. Sets or clears the TXT record in
# pebble-challtestsrv, whose management API the test gives in CHALLTESTSRV_URL.
set -eu
: "${CHALLTESTSRV_URL:?CHALLTESTSRV_URL is not set}"
command="${1:-}"
fqdn="${2:?usage: $0 present|cleanup <fqdn> <value>}"
case "${command}" in
present)
    value="${3:?usage: $0 present <fqdn> <value>}"
    curl -fsS --noproxy '*' -X POST -d "{\"host\":\"${fqdn}\",\"value\":\"${value}\"}" \
        "${CHALLTESTSRV_URL}/set-txt"
    ;;
cleanup)
    curl -fsS --noproxy '*' -X POST -d "{\"host\":\"${fqdn}\"}" "${CHALLTESTSRV_URL}/clear-txt"
    ;;
*)
    echo "unknown command ${command}" >&2
    exit 2
    ;;
esac
