package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// binfmtScript is a hostile postinst: binfmt_misc is not namespaced for
// the sandbox (it shares the host's user namespace), so a handler it
// registered would run on the host for every matching file the host
// executes. It tries to mount binfmt_misc, at its usual place and
// elsewhere, and to register a handler through every register file it
// can see, and records what happened under /opt/binfmt/result.
const binfmtScript = `#!/bin/bash
T=%[1]s
R=/opt/binfmt/result; mkdir -p $R
REG=":aminator-pwn-$T:E::amnpwn$T::/opt/binfmt/handler:"
{ mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && echo MOUNTED;
  mkdir -p /tmp/bm && mount -t binfmt_misc binfmt_misc /tmp/bm && echo MOUNTED; } > $R/mount 2>&1
for reg in /proc/sys/fs/binfmt_misc/register /tmp/bm/register $(find /proc /sys -name register -path '*binfmt*' 2>/dev/null); do
  [ -e "$reg" ] || { echo "$reg: absent" >> $R/register; continue; }
  { echo "$REG" > $reg; [ -e "${reg%%/register}/aminator-pwn-$T" ] && echo "REGISTERED $reg"; } >> $R/register 2>&1
done
{ ls -la /proc/sys/fs/binfmt_misc; grep binfmt /proc/mounts; } > $R/seen 2>&1
exit 0
`

// TestSandboxBinfmtMisc: package code can neither mount binfmt_misc nor
// register a handler, whether or not the distro setting mount_binfmt_misc
// mounts it for the bake; the host's handlers are the same afterwards.
func TestSandboxBinfmtMisc(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	before := hostBinfmt(t)
	token := fmt.Sprintf("%d", os.Getpid())
	t.Cleanup(func() { removeHostBinfmt(t, "aminator-pwn-"+token) })
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-binfmt", Version: "1.0-1",
		Files: map[string]string{
			"/opt/binfmt/attack.sh": fmt.Sprintf(binfmtScript, token),
			"/opt/binfmt/handler":   "#!/bin/sh\ntouch /tmp/aminator-binfmt-ran\n",
		},
		Exec:     []string{"/opt/binfmt/attack.sh", "/opt/binfmt/handler"},
		Postinst: "/opt/binfmt/attack.sh",
	})
	conf := filepath.Join(t.TempDir(), "binfmt.yml")
	if err := os.WriteFile(conf, []byte("plugins:\n  distro.debian:\n    mount_binfmt_misc: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"Default":         {"-B", b, "-s", "binfmt" + token, deb},
		"MountBinfmtMisc": {"--config", conf, "-B", b, "-s", "binfmtm" + token, deb},
	} {
		t.Run(name, func(t *testing.T) {
			id := mustOK(t, aminate(t, args...))
			res := map[string]string{}
			inspect(t, id, 0, func(root string) {
				for _, k := range []string{"mount", "register", "seen"} {
					res[k] = readFile(t, filepath.Join(root, "opt/binfmt/result", k))
				}
			})
			t.Logf("mount: %q register: %q seen: %q", res["mount"], res["register"], res["seen"])
			if res["register"] == "" {
				t.Fatal("the attack script left no results")
			}
			if strings.Contains(res["mount"], "MOUNTED") {
				t.Errorf("package code mounted binfmt_misc:\n%s", res["mount"])
			}
			if strings.Contains(res["register"], "REGISTERED") {
				t.Errorf("package code registered a binfmt_misc handler:\n%s", res["register"])
			}
			if after := hostBinfmt(t); !slices.Equal(before, after) {
				t.Errorf("the host's binfmt_misc handlers changed: %v -> %v", before, after)
			}
		})
	}
}

// hostBinfmt lists the host's binfmt_misc entries: from its mount if it
// has one, else from a mount in a private mount namespace that goes with
// the command (binfmt_misc has one instance for the whole host here).
func hostBinfmt(t *testing.T) []string {
	t.Helper()
	const dir = "/proc/sys/fs/binfmt_misc"
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"[ -e "+dir+"/register ] || mount -t binfmt_misc binfmt_misc "+dir+" && ls -1 "+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("list the host's binfmt_misc: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// removeHostBinfmt removes the handler an attack registered, should one
// have got through, so a failing test leaves the host as it was.
func removeHostBinfmt(t *testing.T, name string) {
	const dir = "/proc/sys/fs/binfmt_misc"
	if !slices.Contains(hostBinfmt(t), name) {
		return
	}
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"[ -e "+dir+"/register ] || mount -t binfmt_misc binfmt_misc "+dir+" && echo -1 > "+dir+"/"+name).CombinedOutput()
	if err != nil {
		t.Errorf("remove the host's binfmt_misc entry %s: %v\n%s", name, err, out)
	}
}
