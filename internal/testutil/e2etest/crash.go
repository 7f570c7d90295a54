package e2etest

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/testutil"
)

var (
	crashOnce sync.Once
	crashBin  string
	crashErr  error
)

// crashBinary builds aminate with the crashpoint hooks (-tags crashpoint),
// once per test binary.
func crashBinary(t *testing.T) string {
	t.Helper()
	crashOnce.Do(func() {
		crashBin = filepath.Join(workDir, "aminate-crashpoint")
		build := exec.Command("go", "build", "-tags", "crashpoint", "-o", crashBin, "./cmd/aminate")
		build.Dir = testutil.RepoRoot()
		if b, err := build.CombinedOutput(); err != nil {
			crashErr = err
			crashBin = string(b)
		}
	})
	if crashErr != nil {
		t.Fatalf("build aminate -tags crashpoint: %v\n%s", crashErr, crashBin)
	}
	return crashBin
}

// Crash runs the crashpoint build of aminate on the cloud, to be killed at
// point: it must die there (its standard error names the point), not
// succeed.
func (c *Cloud) Crash(t *testing.T, point string, extraEnv []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, crashBinary(t), args...)
	cmd.Env = c.Env(append(extraEnv, crashpoint.Env+"="+point)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second // a hung crash fails the test, not the run
	err := cmd.Run()
	if err == nil || !strings.Contains(errb.String(), "crashpoint "+point) {
		t.Fatalf("aminate %v did not crash at %s: %v\nstdout:\n%s\nstderr:\n%s", args, point, err, out.String(), errb.String())
	}
}
