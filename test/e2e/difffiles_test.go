package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/image/treediff"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/testutil"
)

// reproExceptions are what two bakes of one package on one base may
// differ in, each justified in docs/cli.md ("Reproducible bakes"): the
// day an account the package's scripts made was last changed.
var reproExceptions = []string{"--ignore", "/etc/shadow", "--ignore", "/etc/shadow-"}

// Two bakes of the same package on the same base give the same
// normalised file tree: images diff --files prints nothing and exits 0,
// once the listed exceptions are left out. A bake of the package's next
// version prints what changed and exits 1. Nothing stays mounted or
// attached.
func TestReproducibleBakes(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	lib, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libz.so.1")
	if err != nil {
		t.Skipf("no library to ship: %v", err)
	}
	// A service account (written to /etc/shadow with the day), a library
	// (ldconfig records its inode and change time in its cache) and
	// debconf answers (its database files).
	pkg := func(version, data string, extra map[string]string) string {
		files := map[string]string{"/opt/repro/data": data, "/usr/local/lib/librepro.so.1": string(lib)}
		for k, v := range extra {
			files[k] = v
		}
		return testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-repro", Version: version, Files: files,
			Postinst: "getent passwd reprosvc >/dev/null || useradd --system --no-create-home reprosvc; ldconfig; echo configured > /opt/repro/state\n" +
				"printf 'aminator-repro aminator-repro/%s string %s\\n' b 2 a 1 c 3 | debconf-set-selections"})
	}
	deb := pkg("1.0", "one\n", nil)
	dayBefore := time.Now().UTC().Unix() / 86400
	a := mustOK(t, aminate(t, "-B", b, "-s", "repro1", deb))
	a2 := mustOK(t, aminate(t, "-B", b, "-s", "repro2", deb))
	dayAfter := time.Now().UTC().Unix() / 86400

	start := time.Now()
	r := aminate(t, append([]string{"images", "diff", "--files", a, a2}, reproExceptions...)...)
	t.Logf("images diff --files took %v", time.Since(start).Round(time.Millisecond))
	if r.Code != 0 || r.Stdout != "" {
		t.Errorf("two bakes of one package differ (exit %d):\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if dayBefore == dayAfter { // one UTC day: even the exceptions agree
		if r := aminate(t, "images", "diff", "--files", a, a2); r.Code != 0 || r.Stdout != "" {
			t.Errorf("two bakes on one day differ (exit %d):\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	}
	// The package did write what the comparison covers, and the bake put
	// back its own files (policy-rc.d, resolv.conf) as the base had them.
	r = aminate(t, "images", "diff", "--files", b, a)
	for _, l := range []string{"M /etc/ld.so.cache (content)", "M /etc/shadow (content)", "M /var/cache/debconf/config.dat (content)", "+ /usr/local/lib/librepro.so.1"} {
		if !strings.Contains(r.Stdout, l+"\n") {
			t.Errorf("base to bake: no %q in\n%s", l, r.Stdout)
		}
	}
	for _, p := range []string{"/usr/sbin/policy-rc.d", "/etc/resolv.conf", "/var/cache/ldconfig", "/var/log/"} {
		if strings.Contains(r.Stdout, p) {
			t.Errorf("base to bake: %s changed:\n%s", p, r.Stdout)
		}
	}
	// The exception is what it says: the account's last-change day is
	// the bake's (UTC) day.
	inspect(t, a, 0, func(root string) {
		for _, l := range strings.Split(readFile(t, root+"/etc/shadow"), "\n") {
			if f := strings.Split(l, ":"); f[0] == "reprosvc" && len(f) > 2 {
				if d, _ := strconv.ParseInt(f[2], 10, 64); d < dayBefore || d > dayAfter {
					t.Errorf("reprosvc's last change is day %s, not the bake's (%d)", f[2], dayBefore)
				}
				return
			}
		}
		t.Error("the package made no account reprosvc")
	})

	next := pkg("1.1", "two\n", map[string]string{"/opt/repro/extra": "x\n"})
	c := mustOK(t, aminate(t, "-B", b, "-s", "repro3", next))
	r = aminate(t, append([]string{"images", "diff", "--files", a, c}, reproExceptions...)...)
	want := "M /opt/repro/data (content)\n+ /opt/repro/extra\n" +
		"M /var/lib/dpkg/info/aminator-repro.list (content)\nM /var/lib/dpkg/info/aminator-repro.md5sums (content)\n" +
		"M /var/lib/dpkg/status (content)\n"
	if r.Code != 1 || r.Stdout != want {
		t.Errorf("diff of the next version: exit %d\n%s\nwant exit 1\n%s%s", r.Code, r.Stdout, want, r.Stderr)
	}
	r = aminate(t, append([]string{"images", "diff", "--files", "--output", "json", a, c}, reproExceptions...)...)
	var ds []treediff.Diff
	if err := json.Unmarshal([]byte(r.Stdout), &ds); err != nil || r.Code != 1 {
		t.Fatalf("json: exit %d, %v\n%s", r.Code, err, r.Stdout)
	}
	if got := (treediff.Diff{Kind: treediff.Added, Path: "/opt/repro/extra"}); len(ds) < 2 || !reflect.DeepEqual(ds[1], got) {
		t.Errorf("json diff: %+v", ds)
	}
	// Trouble exits 2, not 1 ("they differ").
	if r := aminate(t, "images", "diff", "--files", a, "ami-0000000000000dead"); r.Code != 2 {
		t.Errorf("a missing image: exit %d\n%s", r.Code, r.Stderr)
	}
	interruptDiff(t, a, c)
}

// interruptDiff sends SIGINT to images diff --files while it has an
// image mounted: it stops, and leaves nothing mounted or attached.
func interruptDiff(t *testing.T, a, b string) {
	for try := 0; try < 5; try++ {
		cmd := exec.Command(binary(), "images", "diff", "--files", a, b)
		cmd.Env = env()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for caught := false; !caught; {
			select {
			case <-done: // finished before a mount was seen: again
				caught = true
				continue
			default:
			}
			if len(diffMounts()) > 0 {
				cmd.Process.Signal(syscall.SIGINT)
				err := <-done
				if cmd.ProcessState.ExitCode() != 2 {
					t.Errorf("interrupted: %v, exit %d\n%s", err, cmd.ProcessState.ExitCode(), stderr.String())
				}
				if m := diffMounts(); len(m) > 0 {
					t.Errorf("left mounted: %v", m)
				}
				if l := loop.WaitDetached(stateDir(), 10*time.Second); len(l) > 0 {
					for _, d := range l {
						if strings.Contains(d, "/diff-") {
							t.Errorf("left attached: %s", d)
						}
					}
				}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Skip("the diff always ended before it could be interrupted")
}

// diffMounts are the mounts of images diff --files.
func diffMounts() []string {
	var out []string
	ps, _ := mount.Points()
	for _, p := range ps {
		if strings.Contains(p, "/diff-") {
			out = append(out, p)
		}
	}
	return out
}
