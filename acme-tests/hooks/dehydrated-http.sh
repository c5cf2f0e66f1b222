#!/bin/sh
# dehydrated HOOK for http-01: `deploy_challenge <domain> <token> <key authorization>`
# publishes the key authorization to pebble-challtestsrv's http-01 server, `clean_challenge`
# withdraws it. dehydrated calls the hook for other events too; those need nothing here.
# The test gives the management API in CHALLTESTSRV_URL.
set -eu
: "${CHALLTESTSRV_URL:?CHALLTESTSRV_URL is not set}"
handler="${1:-}"
case "${handler}" in
deploy_challenge)
    curl -fsS --noproxy '*' -X POST \
        -d "{\"token\":\"${3}\",\"content\":\"${4}\"}" \
        "${CHALLTESTSRV_URL}/add-http01"
    ;;
clean_challenge)
    curl -fsS --noproxy '*' -X POST -d "{\"token\":\"${3}\"}" \
        "${CHALLTESTSRV_URL}/del-http01"
    ;;
*) ;;
esac
