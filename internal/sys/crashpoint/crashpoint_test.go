package crashpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Without the build tag Hit does nothing, even at the named point.
func TestHitIsANoOpWithoutTheTag(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags crashpoint")
	}
	t.Setenv(Env, "here")
	Hit("here") // still alive
}

// With the tag, Hit kills the process at the named point, and only there.
func TestHitKillsAtThePoint(t *testing.T) {
	if !Enabled {
		t.Skip("needs -tags crashpoint")
	}
	if os.Getenv("CRASHPOINT_CHILD") != "" {
		Hit("elsewhere")
		os.Stdout.WriteString("passed elsewhere\n")
		Hit("here")
		os.Stdout.WriteString("survived\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHitKillsAtThePoint$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", Env+"=here")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != -1 || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	if !strings.Contains(out.String(), "passed elsewhere") || strings.Contains(out.String(), "survived") {
		t.Errorf("child's output: %q", out.String())
	}
	if !strings.Contains(errb.String(), "crashpoint here") {
		t.Errorf("child's stderr: %q", errb.String())
	}
}
