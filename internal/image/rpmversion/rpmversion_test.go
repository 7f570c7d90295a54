package rpmversion

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// cases are rpm's own test vectors (tests/rpmvercmp.at), the caret's, and
// whole epoch:version-release strings; each was checked with
// rpm --eval '%{lua: print(rpm.vercmp(A, B))}' (rpm 4.18), and
// TestAgreesWithRPM checks them again where rpm is installed.
var cases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0}, {"1.0", "2.0", -1}, {"2.0.1", "2.0.1", 0}, {"2.0", "2.0.1", -1},
	{"2.0.1a", "2.0.1a", 0}, {"2.0.1a", "2.0.1", 1}, {"5.5p1", "5.5p2", -1}, {"5.5p10", "5.5p10", 0},
	{"5.5p1", "5.5p10", -1}, {"10xyz", "10.1xyz", -1}, {"xyz10", "xyz10", 0}, {"xyz10", "xyz10.1", -1},
	{"xyz.4", "xyz.4", 0}, {"xyz.4", "8", -1}, {"xyz.4", "2", -1}, {"5.5p2", "5.6p1", -1},
	{"5.6p1", "6.5p1", -1}, {"6.0.rc1", "6.0", 1}, {"10b2", "10a1", 1}, {"10a2", "10b2", -1},
	{"1.0aa", "1.0aa", 0}, {"1.0a", "1.0aa", -1}, {"10.0001", "10.0001", 0}, {"10.0001", "10.1", 0},
	{"10.0001", "10.0039", -1}, {"4.999.9", "5.0", -1}, {"20101121", "20101122", -1}, {"2_0", "2_0", 0},
	{"2.0", "2_0", 0}, {"a", "a", 0}, {"a+", "a_", 0}, {"+a", "_a", 0}, {"_+", "+_", 0}, {"+", "_", 0},
	{"1.0~rc1", "1.0~rc1", 0}, {"1.0~rc1", "1.0", -1}, {"1.0~rc1", "1.0~rc2", -1},
	{"1.0~rc1~git123", "1.0~rc1~git123", 0}, {"1.0~rc1~git123", "1.0~rc1", -1},
	{"1.0^", "1.0^", 0}, {"1.0^", "1.0", 1}, {"1.0^git1", "1.0", 1}, {"1.0^git1", "1.0^git2", -1},
	{"1.0^git1", "1.01", -1}, {"1.0^20160101", "1.0.1", -1}, {"1.0^20160102", "1.0^20160101^git1", 1},
	{"1.0~rc1^git1", "1.0~rc1", 1}, {"1.0^git1~pre", "1.0^git1", -1},
	{"1.0-1", "1.0-2", -1}, {"1.0-10", "1.0-9", 1}, {"1:1.0-1", "2.0-1", 1}, {"0:1.0-1", "1.0-1", 0},
	{"1.0-1", "1.0", 1}, {"1.0-", "1.0", 1}, {":1.0", "0:1.0", 0}, {"a:1.0", "1.0", -1},
	{"1.0-1-2", "1.0-1", 1}, {"3.1-7", "3.1-7.el9", -1}, {"2.36-9.el9_4", "2.36-9.el9", 1},
	{"1.2.3-4.fc40", "1.2.10-1.fc40", -1}, {"10:1-1", "9:2-1", 1}, {"1.fc17", "1g.fc17", -1},
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

// rpmVercmp asks the installed rpm to compare each pair, in one run.
func rpmVercmp(t *testing.T, pairs [][2]string) []string {
	t.Helper()
	var lua strings.Builder
	lua.WriteString("%{lua: for _, p in ipairs({")
	for _, p := range pairs {
		fmt.Fprintf(&lua, "{%q,%q},", p[0], p[1])
	}
	lua.WriteString("}) do print(rpm.vercmp(p[1], p[2]) .. '\\n') end}")
	out, err := exec.Command("rpm", "--eval", lua.String()).Output()
	if err != nil {
		t.Fatalf("rpm --eval: %v", err)
	}
	return strings.Fields(string(out))
}

// The cases, and a few thousand random versions, agree with rpm itself
// where it is installed.
func TestAgreesWithRPM(t *testing.T) {
	if err := exec.Command("rpm", "--eval", "%{lua: print(rpm.vercmp('1', '2'))}").Run(); err != nil {
		t.Skip("no rpm with rpm.vercmp")
	}
	var pairs [][2]string
	for _, c := range cases {
		pairs = append(pairs, [2]string{c.a, c.b})
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0012349aabz..~^-_:+"
	random := func() string {
		b := make([]byte, 1+r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 3000 {
		a := random()
		b := a[:r.IntN(len(a)+1)] + random() // share a prefix, often
		if r.IntN(2) == 0 {
			b = random()
		}
		pairs = append(pairs, [2]string{a, b})
	}
	got := rpmVercmp(t, pairs)
	if len(got) != len(pairs) {
		t.Fatalf("rpm answered %d of %d", len(got), len(pairs))
	}
	for i, p := range pairs {
		if want := fmt.Sprint(Compare(p[0], p[1])); got[i] != want {
			t.Errorf("Compare(%q, %q) = %s, rpm says %s", p[0], p[1], want, got[i])
		}
	}
}
