package isolated

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// The RedHat-family path: the redhat distro and the yum provisioner (dnf
// here) with the real rpm and dnf, in a Debian image that carries them and
// a local repository (no RedHat mirror is reachable from this machine).
func TestYumBakes(t *testing.T) {
	c := isolated(t)
	dir := t.TempDir()
	dep := testutil.BuildRPM(t, dir, testutil.RPM{Name: "aminator-rpmdep", Version: "0.9", Release: "1", Files: map[string]string{"/opt/rpmdep/lib": "dep\n"}})
	repoPkg := testutil.BuildRPM(t, dir, testutil.RPM{Name: "aminator-rpmrepo", Version: "3.1", Release: "7", Files: map[string]string{"/opt/rpmrepo/x": "repo\n"}})
	app := testutil.BuildRPM(t, dir, testutil.RPM{Name: "aminator-rpmapp", Version: "1.0", Release: "2", Requires: "aminator-rpmdep",
		Files: map[string]string{"/opt/rpmapp/app": "app\n"}})
	img := testutil.RPMBase(t, []string{dep, repoPkg})
	b := mustOK(t, c.Aminate(t, "images", "import", "--role", "base", "rpm-base", img))
	conf := filepath.Join(dir, "yum.yml")
	os.WriteFile(conf, []byte("plugins:\n  provisioner.yum:\n    install_options: [--releasever=12, --setopt=install_weak_deps=False]\n"), 0o644)

	// A local .rpm whose dependency comes from the repository.
	id := mustOK(t, c.Aminate(t, "--config", conf, "-e", "local_yum_linux", "-B", b, "-s", "rpm", app))
	im := c.ShowImage(t, id)
	if im.Name != "aminator-rpmapp-1.0-2-x86_64-rpm-ebs" || im.Tags["appversion"] != "aminator-rpmapp-1.0-2" {
		t.Errorf("image %s tags %v", im.Name, im.Tags)
	}
	c.Inspect(t, id, 0, func(root string) {
		out, err := exec.Command("rpm", "--root", root, "-q", "aminator-rpmapp", "aminator-rpmdep").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "aminator-rpmapp-1.0-2.noarch") || !strings.Contains(string(out), "aminator-rpmdep-0.9-1.noarch") {
			t.Errorf("rpm -q in the image: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(root, "tmp", "aminator-")); err == nil {
			t.Error("staging left in /tmp")
		}
	})

	// By name from the repository, and the manifest diff between the two.
	id2 := mustOK(t, c.Aminate(t, "--config", conf, "-e", "local_yum_linux", "-B", b, "-s", "rpmrepo", "aminator-rpmrepo"))
	if v := c.ShowImage(t, id2).Tags["appversion"]; v != "aminator-rpmrepo-3.1-7" {
		t.Errorf("appversion %q", v)
	}
	out := mustOK(t, c.Aminate(t, "images", "diff", id, id2))
	for _, w := range []string{"+ aminator-rpmrepo 3.1-7", "- aminator-rpmapp 1.0-2", "- aminator-rpmdep 0.9-1"} {
		if !strings.Contains(out, w) {
			t.Errorf("diff lacks %q:\n%s", w, out)
		}
	}
	r := c.Aminate(t, "--config", conf, "-e", "local_yum_linux", "-B", b, "-s", "nope", "aminator-no-such-rpm")
	if r.Code != 1 || !strings.Contains(r.Stderr, "aminator-no-such-rpm") {
		t.Errorf("missing package: exit %d\n%s", r.Code, r.Stderr)
	}
}
