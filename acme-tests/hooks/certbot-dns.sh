#!/bin/sh
# certbot --manual-auth-hook "certbot-dns.sh auth" / --manual-cleanup-hook "certbot-dns.sh cleanup":
# sets or clears the dns-01 TXT record in pebble-challtestsrv.
# certbot sets CERTBOT_DOMAIN (the base name for a wildcard) and CERTBOT_VALIDATION; the test
# sets CHALLTESTSRV_URL to the management API. Records accumulate, so a wildcard and its base
# name, both at _acme-challenge.<base>, can be validated together.
set -eu
: "${CHALLTESTSRV_URL:?CHALLTESTSRV_URL is not set}"
: "${CERTBOT_DOMAIN:?CERTBOT_DOMAIN is not set}"
host="_acme-challenge.${CERTBOT_DOMAIN}."
case "${1:-}" in
auth)
    : "${CERTBOT_VALIDATION:?CERTBOT_VALIDATION is not set}"
    curl -fsS --noproxy '*' -X POST \
        -d "{\"host\":\"${host}\",\"value\":\"${CERTBOT_VALIDATION}\"}" \
        "${CHALLTESTSRV_URL}/set-txt"
    ;;
cleanup)
    curl -fsS --noproxy '*' -X POST -d "{\"host\":\"${host}\"}" "${CHALLTESTSRV_URL}/clear-txt"
    ;;
*)
    echo "usage: $0 auth|cleanup" >&2
    exit 2
    ;;
esac
