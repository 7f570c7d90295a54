package sandbox

import (
	"strings"
	"testing"
)

// A dynamically linked program names its loader; the one the tests build
// with CGO_ENABLED=0 (scripts/setup.sh) names none.
func TestInterpreter(t *testing.T) {
	if got, err := interpreter("/bin/sh"); err != nil || !strings.Contains(got, "ld-") {
		t.Errorf("/bin/sh: %q, %v", got, err)
	}
	if err := selfStatic(); err != nil {
		t.Errorf("the test binary: %v (scripts/setup.sh sets CGO_ENABLED=0)", err)
	}
}
