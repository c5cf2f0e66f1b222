#!/bin/sh
# dehydrated HOOK for dns-01: `deploy_challenge <domain> <token file> <TXT value>` sets the
# TXT record at _acme-challenge.<domain> in pebble-challtestsrv, `clean_challenge` clears it.
# dehydrated calls the hook for other events too (startup_hook, deploy_cert, exit_hook, ...);
# those need nothing here. The test gives the management API in CHALLTESTSRV_URL.
set -eu
: "${CHALLTESTSRV_URL:?CHALLTESTSRV_URL is not set}"
handler="${1:-}"
case "${handler}" in
deploy_challenge)
    curl -fsS --noproxy '*' -X POST \
        -d "{\"host\":\"_acme-challenge.${2}.\",\"value\":\"${4}\"}" \
        "${CHALLTESTSRV_URL}/set-txt"
    ;;
clean_challenge)
    curl -fsS --noproxy '*' -X POST -d "{\"host\":\"_acme-challenge.${2}.\"}" \
        "${CHALLTESTSRV_URL}/clear-txt"
    ;;
*) ;;
esac
