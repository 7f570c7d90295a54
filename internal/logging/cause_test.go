package logging

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The files in testdata are real output of apt-get and dpkg in a bake,
// captured by test/e2e's TestFailureCauses (run it with
// AMINATOR_KEEP_FAILURE_LOGS=DIR to keep the bakes' DEBUG logs).
func TestCauseOfRealFailures(t *testing.T) {
	for _, tc := range []struct {
		file, cause string
		shows       []string // among the relevant lines
	}{
		{"apt-install-missing.txt", "E: Unable to locate package aminator-no-such-package", nil},
		{"dpkg-truncated-deb.txt", "dpkg-deb (subprocess): cannot copy archive member from '/tmp/aminator-eabc3f4609ac/package.deb' to decompressor pipe: unexpected end of file or stream",
			[]string{"dpkg-deb: error: <decompress> subprocess returned error exit status 2", " cannot copy extracted data for './opt/truncated/data' to '/opt/truncated/data.dpkg-new': unexpected end of file or stream"}},
		{"dpkg-preinst.txt", "dpkg: new aminator-preinst package pre-installation script subprocess returned error exit status 1",
			[]string{"preinst-refusing-on-purpose"}},
		{"dpkg-postinst.txt", "dpkg: installed aminator-postinst package post-installation script subprocess returned error exit status 3",
			[]string{"postinst-failing-on-purpose", "Setting up aminator-postinst (1.0) ..."}},
		{"apt-fix-postinst.txt", "dpkg: installed aminator-postinst package post-installation script subprocess returned error exit status 3",
			[]string{"postinst-failing-on-purpose", "E: Sub-process /usr/bin/dpkg returned an error code (1)"}},
		{"dpkg-no-space.txt", "dpkg: error creating directory './opt/full': No space left on device",
			[]string{" unable to flush /var/lib/dpkg/updates/tmp.i after padding: No space left on device"}},
		{"apt-update-no-space.txt", "Error writing to file - write (28: No space left on device) [IP: 203.0.113.80 80]",
			[]string{"E: Write error - write (28: No space left on device)", "E: The package lists or status file could not be parsed or opened."}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		cause, lines := Cause(string(b))
		if cause != tc.cause {
			t.Errorf("%s: cause %q, want %q", tc.file, cause, tc.cause)
		}
		all := strings.Join(lines, "\n")
		for _, w := range append(tc.shows, strings.TrimPrefix(tc.cause, "dpkg: ")) {
			if !strings.Contains(all, w) {
				t.Errorf("%s: the relevant lines do not show %q:\n%s", tc.file, w, all)
			}
		}
		if len(lines) > maxRelevant {
			t.Errorf("%s: %d relevant lines", tc.file, len(lines))
		}
		for _, l := range lines {
			if noise.MatchString(l) {
				t.Errorf("%s: progress chatter among the relevant lines: %q", tc.file, l)
			}
		}
	}
}

// dnf's and rpm's words for a missing package, a failing scriptlet and a
// full disk, written after dnf 4 and rpm 4 (not captured: the yum e2e
// image has no mirror to fail against).
func TestCauseDNF(t *testing.T) {
	for out, want := range map[string]string{
		"Last metadata expiration check: 0:00:01 ago.\nNo match for argument: nopkg\nError: Unable to find a match: nopkg\n":                                        "No match for argument: nopkg",
		"Running transaction\n  Preparing        :\nerror: %prein(foo-1-1.noarch) scriptlet failed, exit status 1\n\nError in PREIN scriptlet in rpm package foo\n": "error: %prein(foo-1-1.noarch) scriptlet failed, exit status 1",
		"Error: Transaction test error:\n  installing package foo-1-1.noarch needs 12MB more space on the / filesystem\n":                                           "Error: Transaction test error:",
	} {
		if cause, _ := Cause(out); cause != want {
			t.Errorf("cause %q, want %q", cause, want)
		}
	}
}

// Nothing recognised: no cause, and the error reads as before.
func TestCommandErrorWithoutCause(t *testing.T) {
	e := &CommandError{Argv: []string{"mkfs.ext4", "/dev/x"}, Err: errors.New("exit status 1"), Tail: "mke2fs 1.47.0\nsome line"}
	if got := e.Error(); got != "mkfs.ext4 /dev/x: exit status 1\n  last output:\n    mke2fs 1.47.0\n    some line" {
		t.Errorf("%q", got)
	}
}

// The cause leads the message; the command and the tool's last error
// lines follow.
func TestCommandErrorLeadsWithTheCause(t *testing.T) {
	b, _ := os.ReadFile("testdata/dpkg-preinst.txt")
	e := &CommandError{Argv: []string{"dpkg", "-i", "/tmp/p.deb"}, Err: &exec.ExitError{}, Tail: string(b)}
	e.Err = errors.New("exit status 1")
	lines := strings.Split(e.Error(), "\n")
	if lines[0] != "dpkg: new aminator-preinst package pre-installation script subprocess returned error exit status 1" ||
		lines[1] != "  dpkg -i /tmp/p.deb: exit status 1" || lines[2] != "  dpkg's last error lines:" || lines[3] != "    preinst-refusing-on-purpose" {
		t.Errorf("message:\n%s", e.Error())
	}
	b, _ = os.ReadFile("testdata/apt-install-missing.txt")
	e = &CommandError{Argv: []string{"apt-get", "install", "x"}, Err: errors.New("exit status 100"), Tail: string(b)}
	if got := e.Error(); got != "E: Unable to locate package aminator-no-such-package\n  apt-get install x: exit status 100" {
		t.Errorf("%q", got)
	}
}

func TestRunLinesObserves(t *testing.T) {
	var seen []string
	log := slog.New(slog.DiscardHandler)
	cmd := exec.Command("/bin/sh", "-c", "echo I: one; echo I: two >&2; exit 3")
	err := RunLines(context.Background(), log, cmd, nil, func(l string) { seen = append(seen, l) })
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 {
		t.Fatalf("err %v", err)
	}
	if len(seen) != 2 || seen[0] != "I: one" || seen[1] != "I: two" {
		t.Errorf("observed %q", seen)
	}
}
