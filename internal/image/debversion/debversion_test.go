package debversion

import (
	"os/exec"
	"testing"
)

var cases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0}, {"1.0", "1.1", -1}, {"1.10", "1.9", 1}, {"1:0.1", "2.0", 1},
	{"1.0~rc1", "1.0", -1}, {"1.0", "1.0+b1", -1}, {"2.10-3", "2.10-10", -1}, {"1.0a", "1.0", 1},
	{"1.0-1", "1.0", 1}, {"0:1.0", "1.0", 0}, {"1.0~~", "1.0~", -1}, {"7.88+dfsg-1", "7.88-1", 1},
	{"1.2.3-1ubuntu1", "1.2.3-1", 1}, {"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
}

func TestCompare(t *testing.T) {
	for _, c := range cases {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// The cases agree with dpkg itself, where it is installed.
func TestAgreesWithDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	for _, c := range cases {
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[c.want]
		if err := exec.Command("dpkg", "--compare-versions", c.a, op, c.b).Run(); err != nil {
			t.Errorf("dpkg disagrees: %s %s %s", c.a, op, c.b)
		}
	}
}
