package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/aminator-go/aminator/internal/testutil"
)

// keyValue is a line of slog's text format.
var keyValue = regexp.MustCompile(`(^|\s)(time|level|msg)=`)

// aminatePTY runs aminate with standard error on a pseudo-terminal (as a
// person at a terminal sees it) and standard output on a pipe, or on the
// terminal too with shared. It returns what the terminal shows at the end,
// line by line.
func aminatePTY(t *testing.T, shared bool, args ...string) (screen []string, res result) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(), args...)
	cmd.Env = env("TERM=xterm")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	if shared {
		cmd.Stdout = tty
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.Stdin = tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var raw bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&raw, ptmx) // ends with EIO once the child and its children are gone
		close(copied)
	}()
	err = cmd.Wait()
	<-copied
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run aminate: %v", err)
	}
	res.Stdout, res.Stderr = out.String(), raw.String()
	return testutil.TerminalLines(raw.String()), res
}

// On a terminal a bake shows timed stage lines, sentences and a final
// table, and no key=value line; standard output is still just the id.
func TestConsoleBakeOnTerminal(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-console", Version: "1.0",
		Files: map[string]string{"/opt/console/data": strings.Repeat("console\n", 1<<16)}})
	// Standard output on the terminal too: the id is the last line, after
	// the table, and no redraw erased it.
	screen, r := aminatePTY(t, true, "-B", b, "-s", "tty", "--tag", "team=console", deb)
	text := strings.Join(screen, "\n")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, text)
	}
	id := screen[len(screen)-1]
	if !regexp.MustCompile(`^ami-[0-9a-f]{17}$`).MatchString(id) {
		t.Fatalf("the last line is not the image id: %q\n%s", id, text)
	}
	for _, l := range screen {
		if keyValue.MatchString(l) {
			t.Errorf("key=value line on the terminal: %q\n%s", l, text)
		}
	}
	for _, stage := range []string{"resolve base", "create volume", "attach volume", "mount", "provision", "scripts", "manifest", "clean image", "unmount", "snapshot and register"} {
		re := regexp.MustCompile(`(?m)^==> ` + stage + `  [0-9.]+s$`)
		if n := len(re.FindAllString(text, -1)); n != 1 {
			t.Errorf("%d timed lines for stage %q, want 1:\n%s", n, stage, text)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^    package installed: aminator-console \(version 1\.0, arch all\)$`),
		regexp.MustCompile(`(?m)^==> bake done in [0-9.ms]+\n    image +` + id + `\n    name +aminator-console-1\.0-0-x86_64-tty-ebs\n    tags +appversion +aminator-console-1\.0-0$`),
		regexp.MustCompile(`(?m)^ +team +console$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the screen does not match %s:\n%s", want, text)
		}
	}
	if strings.ContainsAny(text, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") {
		t.Errorf("a spinner is left on the screen:\n%s", text)
	}
}

// Elsewhere, and with --log-format text or json, the console stays
// machine-readable.
func TestConsoleFormats(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-formats", Version: "1.0"})
	r := aminate(t, "--dry-run", "-B", b, deb)
	mustOK(t, r)
	if !strings.Contains(r.Stderr, `level=INFO msg="stage resolve base"`) || strings.Contains(r.Stderr, "==>") {
		t.Errorf("not a terminal: want key=value lines\n%s", r.Stderr)
	}
	r = aminate(t, "--log-format", "json", "--dry-run", "-B", b, deb)
	mustOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil {
			t.Errorf("--log-format json: not a JSON record: %q (%v)", l, err)
		}
	}
	if len(lines) < 3 {
		t.Errorf("--log-format json: %d lines", len(lines))
	}
	screen, r := aminatePTY(t, false, "--log-format", "text", "--dry-run", "-B", b, deb)
	if r.Code != 0 || !keyValue.MatchString(strings.Join(screen, "\n")) {
		t.Errorf("--log-format text on a terminal: exit %d, want key=value lines\n%s", r.Code, strings.Join(screen, "\n"))
	}
	r = aminateEnv(t, []string{"AMINATOR_LOG_FORMAT=yaml"}, "--dry-run", "-B", b, deb)
	if r.Code != 2 || !strings.Contains(r.Stderr, "log_format") {
		t.Errorf("a bad log format: exit %d\n%s", r.Code, r.Stderr)
	}
}

// errorLine is the first line of the bake's error.
func errorLine(t *testing.T, r result) string {
	t.Helper()
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r.Stderr)
	}
	i := strings.Index(r.Stderr, "aminate: error: ")
	if i < 0 {
		t.Fatalf("no error line:\n%s", r.Stderr)
	}
	line, _, _ := strings.Cut(r.Stderr[i:], "\n")
	return line
}

// A failed install says why in the package manager's own words on the
// error's first line, not "exit status 100" or "not fully installed".
func TestFailureCauses(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	truncated := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-truncated", Version: "1.0",
		Files: map[string]string{"/opt/truncated/data": pseudoRandom(1 << 20)}})
	st, err := os.Stat(truncated)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(truncated, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	preinst := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-preinst", Version: "1.0",
		Preinst: "echo preinst-refusing-on-purpose >&2; exit 1"})
	// The preinst leaves less than 1 MiB free; the 4 MiB file cannot be unpacked.
	full := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-full", Version: "1.0",
		Files: map[string]string{"/opt/full/data": strings.Repeat("full\n", 800<<10)},
		Preinst: `set -- $(stat -f -c '%f %S' /); n=$(( $1 * $2 ))
while [ $n -gt 0 ] && ! fallocate -l $n /var/tmp/aminator-filler 2>/dev/null; do n=$(( n - 1048576 )); done
exit 0`})
	postinst := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-postinst", Version: "1.0",
		Postinst: "echo postinst-failing-on-purpose >&2; exit 3"})
	for _, tc := range []struct {
		name, pkg string
		want      []string
		output    string // in the error's later lines
	}{
		{"missing", "aminator-no-such-package", []string{"E: Unable to locate package aminator-no-such-package"}, ""},
		{"truncated", truncated, []string{"dpkg-deb"}, ""},
		{"preinst", preinst, []string{"new aminator-preinst package pre-installation script subprocess returned error exit status 1"}, "preinst-refusing-on-purpose"},
		{"full", full, []string{"No space left on device"}, ""},
		{"postinst", postinst, []string{"installed aminator-postinst package post-installation script subprocess returned error exit status 3"}, "postinst-failing-on-purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := aminate(t, "-B", b, "-s", "cause-"+tc.name, tc.pkg)
			line := errorLine(t, r)
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("the error's first line does not say %q:\n%s", w, r.Stderr)
				}
			}
			if strings.Contains(r.Stderr, "not fully installed") || strings.Contains(line, "exit status 100") {
				t.Errorf("the error hides the cause:\n%s", r.Stderr)
			}
			if tc.output != "" && !strings.Contains(r.Stderr, tc.output) {
				t.Errorf("the error does not show the package's output %q:\n%s", tc.output, r.Stderr)
			}
			if m := regexp.MustCompile(`(?m)^  log: (\S+)$`).FindStringSubmatch(r.Stderr); m == nil {
				t.Errorf("no log path under the error:\n%s", r.Stderr)
			} else if dst := os.Getenv("AMINATOR_KEEP_FAILURE_LOGS"); dst != "" {
				// How internal/logging's testdata was captured.
				os.MkdirAll(dst, 0o755)
				exec.Command("cp", m[1], dst+"/"+tc.name+".log").Run()
			}
		})
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
}

// pseudoRandom is n bytes that do not compress.
func pseudoRandom(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return string(b)
}
