#!/usr/bin/env bash
# test.sh: the whole test suite, as root: formatting, vet, and every Go test
# (unit tests and the end-to-end bakes against a Debian base built here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
if [ -z "${AMINATOR_TEST_CACHE:-}" ]; then
  AMINATOR_TEST_CACHE=$(mktemp -d /var/tmp/aminator-test-cache.XXXXXX)
  trap 'rm -rf "$AMINATOR_TEST_CACHE"' EXIT
fi
export AMINATOR_TEST_CACHE
unformatted=$(gofmt -l cmd internal test)
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...
go test -count=1 -timeout 60m -parallel 4 ./...
