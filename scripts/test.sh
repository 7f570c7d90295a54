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
# The end-to-end packages first, longest first, and -p 6: go test starts the
# packages' test binaries in the order given, with at most -p builds and runs
# at a time, so the four e2e packages (the boot-tested pipelines, the tests
# on the shared cloud, those on clouds of their own, EC2; their tests mostly
# wait on qemu, mmdebstrap and moto) start as soon as they are built and run
# beside each other and the unit tests. go vet above ran every check on
# every package, so go test's own vet pass (a subset) is off.
go test -count=1 -timeout 75m -parallel 4 -p 6 -vet=off \
  ./test/e2e/boot ./test/e2e ./test/e2e/isolated ./test/e2e/ec2 ./...
