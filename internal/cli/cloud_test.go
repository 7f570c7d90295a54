package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// run runs aminate with a configuration of its own (no /etc/aminator, no
// ~/.aminator) and a fresh state directory.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AMINATOR_CONFIG_DIR", filepath.Join(dir, "etc"))
	t.Setenv("HOME", filepath.Join(dir, "home"))
	args = append([]string{"--state-dir", filepath.Join(dir, "state"), "--log-dir", filepath.Join(dir, "log"), "--store-fs", "none"}, args...)
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// One rule picks a command's cloud: --cloud, else the environment's. A
// command that needs what the cloud lacks says which cloud and what,
// instead of working on the local cloud; an unknown cloud is a usage
// error. On moto for EC2 (skipped when it is not installed).
func TestCommandCloud(t *testing.T) {
	if code, _, errOut := run(t, "--cloud", "nowhere", "snapshots", "list"); code != 2 || !strings.Contains(errOut, `--cloud "nowhere": no such cloud`) {
		t.Errorf("an unknown cloud: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run(t, "--cloud", "ec2", "--dry-run", "-B", "ami-1", "pkg"); code != 2 || !strings.Contains(errOut, "a bake runs on its environment's cloud") {
		t.Errorf("a bake with --cloud naming another cloud than its environment's: exit %d, %s", code, errOut)
	}
	code, out, errOut := run(t, "--output", "json", "pool", "status")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("pool status on the default environment's (local) cloud: exit %d, %q, %s", code, out, errOut)
	}
	ec2test.Start(t)
	cmds := [][]string{
		{"--cloud", "ec2", "fsck"},
		{"--cloud", "ec2", "images", "export", "IMAGE", filepath.Join(t.TempDir(), "x.img")},
		{"--cloud", "ec2", "images", "diff", "A", "B"},
		{"-e", "ec2_apt_linux", "images", "import", "NAME", "disk.img"},
		{"--cloud", "ec2", "bundle", "IMAGE", "-d", t.TempDir()},
	}
	if os.Geteuid() == 0 { // init refuses anyone else first
		cmds = append(cmds, []string{"--cloud", "ec2", "init"})
	}
	for _, args := range cmds {
		code, _, errOut := run(t, args...)
		if code != 1 || !strings.Contains(errOut, "the ec2 cloud has no ") || !strings.Contains(errOut, "capability not implemented") {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
	code, out, errOut = run(t, "--cloud", "ec2", "--output", "json", "snapshots", "list")
	var list []any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Errorf("snapshots list on EC2: exit %d, %q, %s", code, out, errOut)
	}
}
