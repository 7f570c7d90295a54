package e2e

import (
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

var freeAddr = e2etest.FreeAddr

// serve starts aminate serve with args on the shared cloud; the function
// it returns stops it.
func serve(t *testing.T, args ...string) func() {
	t.Helper()
	return shared().Serve(t, args...)
}

// waitAPI waits until the API at c.URL answers (401 without a token).
func waitAPI(t *testing.T, c bakeryClient) {
	t.Helper()
	e2etest.WaitAPI(t, c.URL)
}
