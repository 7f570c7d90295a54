package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/testutil"
)

// startSlowBake starts a bake whose postinst sleeps and returns once the
// postinst runs; extraEnv goes into its environment.
func startSlowBake(t *testing.T, suffix string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-slow" + suffix, Version: "1.0", Postinst: "echo AMINATOR-TEST-SLEEPING; sleep 303"})
	logDir := filepath.Join(workDir(), "log")
	before, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	cmd := exec.Command(binary(), "-B", base(t), "-s", suffix, deb)
	cmd.Env = env(extraEnv...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		after, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
		for _, p := range after {
			if slices.Contains(before, p) {
				continue
			}
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "AMINATOR-TEST-SLEEPING") {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("the postinst never started")
	return nil
}

// SIGKILL of the bake itself: its mount namespace dies with it, so no
// mount is left, and its autoclear loop device goes too; the volume it
// owned shows as orphaned and `volumes rm --orphaned` removes it.
// SIGKILL of the parent: the bake gets SIGTERM and cleans up by itself.
func TestKilledBakes(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	cmd := startSlowBake(t, "kill9")
	out, err := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid), "-x", "aminate").Output()
	if err != nil {
		t.Fatalf("no bake child: %v", err)
	}
	var child int
	fmt.Sscan(string(out), &child)
	syscall.Kill(child, syscall.SIGKILL)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Error("a killed bake exited 0")
	}
	// The postinst's sleep dies with the bake's PID namespace.
	time.Sleep(100 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", "sleep 303").Output(); len(out) > 0 {
		t.Errorf("the killed bake's postinst still runs: %s", out)
	}
	r := aminate(t, "volumes", "list")
	if !strings.Contains(r.Stdout, "ORPHANED") {
		t.Errorf("the killed bake's volume is not shown as orphaned:\n%s", r.Stdout)
	}
	mustOK(t, aminate(t, "volumes", "rm", "--orphaned"))
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left after rm --orphaned: %d rows, %d files", rows, files)
	}

	cmd = startSlowBake(t, "killparent")
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(time.Minute)
	for {
		rows, files := volumeCount(t)
		if rows == 0 && files == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphaned child did not clean up: %d volumes", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stateTree lists the files under the state directory that are not the
// store's, the registry's or a lock every command shares.
func stateTree(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.Walk(stateDir(), func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(stateDir(), p)
		if err != nil || rel == "." {
			return nil
		}
		if rel == "data" || strings.HasPrefix(rel, "aminator.db") || isStandingLock(rel) {
			if info != nil && info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// isStandingLock reports whether rel is one of the state's lock files that
// stay once made (whoever first needs one makes it; flock needs the file).
func isStandingLock(rel string) bool {
	return slices.Contains([]string{"lock/loop.lock", "lock/datafs.lock", "lock/pool-take.lock"}, rel)
}

// A bake SIGKILLed mid-way, its parent or the bake itself, leaves nothing
// that gc does not remove: no refill list in TMPDIR or the state's tmp/,
// no volume, no mount point, no job lock.
func TestKilledBakeLeavesNothingAfterGC(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	base(t)
	tmp := t.TempDir()
	mustOK(t, aminate(t, "gc"))
	before := stateTree(t) // what other tests left may go; nothing may come
	for _, victim := range []string{"parent", "bake"} {
		cmd := startSlowBake(t, "gc"+victim, "TMPDIR="+tmp)
		if lists, _ := filepath.Glob(filepath.Join(stateDir(), "tmp", "refill-*")); len(lists) != 1 {
			t.Errorf("a running bake has %d refill lists in the state's tmp/", len(lists))
		}
		pid := cmd.Process.Pid
		if victim == "bake" {
			out, err := exec.Command("pgrep", "-P", fmt.Sprint(pid), "-x", "aminate").Output()
			if err != nil {
				t.Fatalf("no bake child: %v", err)
			}
			fmt.Sscan(string(out), &pid)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
		// The bake of a killed parent cleans up and ends by itself; gc
		// leaves scratch alone while any bake runs.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mustOK(t, aminate(t, "gc"))
			left := newIn(stateTree(t), before)
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SIGKILL of the %s: after gc the state still has %v", victim, left)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("SIGKILL of the %s left in TMPDIR: %v", victim, ents)
		}
	}
}

// newIn lists what is in after and not in before.
func newIn(after, before []string) []string {
	var out []string
	for _, a := range after {
		if !slices.Contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}
