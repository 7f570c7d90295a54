package pkgmgr_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin/provisioner/apt"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
)

const (
	aptInstall = "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o Acquire::Retries=3 "
	// dpkgQuery lists every package (Provision: the package and the
	// manifest at once); with a name after it, one package (Query).
	dpkgQuery = "dpkg-query -W -f ${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"
)

func installed(name, version string) fakechroot.Result {
	return fakechroot.OK("ii \tbase-files\t12.4\tall\nii \t" + name + "\t" + version + "\tamd64\n")
}

// A repository package is resolved (update, then apt-cache) and the
// version resolved is the one installed, without a second update; the
// install time is the install's alone.
func TestAptRepoResolvedThenInstalled(t *testing.T) {
	ctx := context.Background()
	c := fakechroot.New(t).
		On("apt-get -q update", fakechroot.Result{Took: 30 * time.Second}).
		On("apt-cache show", fakechroot.OK("Package: hello\nVersion: 2.10-3\nArchitecture: amd64\n")).
		On(" install hello=2.10-3", fakechroot.Result{Took: 7 * time.Second}).
		On("dpkg-query", installed("hello", "2.10-3")).
		On("apt-get clean", fakechroot.Result{Took: time.Second})
	d, _ := newDriver(t, &apt.Backend{InstallOptions: []string{"--no-install-recommends"}}, c, nil)
	ref, err := d.Parse("hello")
	if err != nil {
		t.Fatal(err)
	}
	ref, known, err := d.Resolve(ctx, c, ref)
	if err != nil || known == nil || known.FullVersion != "2.10-3" || known.Release != "3" || ref.Version != "2.10-3" || !ref.Resolved {
		t.Fatalf("Resolve: %+v %+v %v", ref, known, err)
	}
	info, err := d.Provision(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "hello" || info.FullVersion != "2.10-3" || info.Arch != "amd64" || info.InstallTime != 14*time.Second /* download, then install */ {
		t.Errorf("info %+v", info)
	}
	wantCommands(t, c, "apt-get -q update", "apt-cache show --no-all-versions hello",
		aptInstall+"--no-install-recommends install hello=2.10-3 --download-only",
		aptInstall+"--no-install-recommends install hello=2.10-3", dpkgQuery, "apt-get clean")
}

// A package apt-cache does not know is left to apt-get install, whose
// own words say why (not apt-cache's "No packages found").
func TestAptMissingPackageSaysWhy(t *testing.T) {
	ctx := context.Background()
	c := fakechroot.New(t).
		On("apt-cache show", fakechroot.Fail(100, "E: No packages found\n")).
		On(" install ", fakechroot.Fail(100, capture(t, "apt-install-missing.txt")))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse("aminator-no-such-package")
	ref, known, err := d.Resolve(ctx, c, ref)
	if err != nil || known != nil || !ref.Resolved {
		t.Fatalf("Resolve: %+v %+v %v", ref, known, err)
	}
	_, err = d.Provision(ctx, c, ref)
	if err == nil || !strings.Contains(firstLine(err), "E: Unable to locate package aminator-no-such-package") {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "apt-get -q update", "apt-cache show", aptInstall+"install aminator-no-such-package")

	// apt-cache show NAME=VERSION of a version it lacks prints nothing.
	c = fakechroot.New(t).On("apt-cache show", fakechroot.OK(""))
	d, _ = newDriver(t, &apt.Backend{}, c, nil)
	ref, _ = d.Parse("hello=9.9")
	if ref, known, err := d.Resolve(ctx, c, ref); err != nil || known != nil || !ref.Resolved || ref.Version != "9.9" {
		t.Errorf("Resolve: %+v %+v %v", ref, known, err)
	}
}

// apt-get update is retried with the one policy; the last failure says why.
func TestAptUpdateRetried(t *testing.T) {
	ctx := context.Background()
	failed := fakechroot.Fail(100, "Err:1 http://deb.example hello\nE: Failed to fetch http://deb.example/dists/x/InRelease  503\n")
	c := fakechroot.New(t).On("apt-get -q update", failed, failed, fakechroot.OK("")).On("dpkg-query", installed("hello", "1"))
	d, log := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { o.Clean = false })
	ref, _ := d.Parse("hello=1")
	if _, err := d.Provision(ctx, c, ref); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, c, "apt-get -q update", "apt-get -q update", "apt-get -q update", " install hello=1 --download-only", " install hello=1", "dpkg-query")
	if n := strings.Count(log.String(), "failed; retrying"); n != 2 {
		t.Errorf("%d retry warnings:\n%s", n, log)
	}

	c = fakechroot.New(t).On("apt-get -q update", failed)
	d, _ = newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { o.Retries = 2 })
	_, err := d.Provision(ctx, c, ref)
	if err == nil || !strings.HasPrefix(firstLine(err), "apt-get update: E: Failed to fetch") {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "apt-get -q update", "apt-get -q update")
}

// A cancelled bake stops retrying at once.
func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := fakechroot.New(t).On("apt-get -q update", fakechroot.Fail(100, "E: Failed to fetch\n"))
	d, _ := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { o.Backoff = time.Hour })
	ref, _ := d.Parse("hello")
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	if _, _, err := d.Resolve(ctx, c, ref); err == nil {
		t.Error("no error")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	wantCommands(t, c, "apt-get -q update")
}

// A .deb whose dependencies dpkg -i lacks: update, apt-get -f install,
// and the package must then be installed; the install time is dpkg's and
// apt-get's, not the update's. The staged file is gone afterwards.
func TestAptFileWithDependencies(t *testing.T) {
	ctx := context.Background()
	deps := "dpkg: dependency problems prevent configuration of aminator-deps:\n aminator-deps depends on hello; however:\n  Package hello is not installed.\n\n" +
		"dpkg: error processing package aminator-deps (--install):\n dependency problems - leaving unconfigured\nErrors were encountered while processing:\n aminator-deps\n"
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-deps\n")).
		On("dpkg -i", fakechroot.Result{Exit: 1, Output: deps, Took: 2 * time.Second}).
		On("apt-get -q update", fakechroot.Result{Took: time.Minute}).
		On("-f install", fakechroot.Result{Took: 3 * time.Second}).
		On("dpkg-query", installed("aminator-deps", "0.1"))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, err := d.Parse(packageFile(t, "aminator-deps_0.1_all.deb"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Provision(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-deps" || info.InstallTime != 8*time.Second /* dpkg -i, download, install */ {
		t.Errorf("info %+v", info)
	}
	wantCommands(t, c, "dpkg-deb --field /tmp/aminator-", "dpkg -i /tmp/aminator-", "apt-get -q update", aptInstall+"-f install --download-only",
		aptInstall+"-f install", dpkgQuery+" aminator-deps", dpkgQuery, "apt-get clean")
	if argv := c.Calls()[1].Argv; !strings.HasSuffix(argv[2], "/package.deb") {
		t.Errorf("staged as %q", argv[2])
	}
	noStaging(t, c)
}

// A .deb the host can read installs with at most two commands in the
// image: dpkg -i and, when the host cannot read dpkg's status file (here
// there is none), one dpkg-query that reads the package back with every
// installed package (the manifest). Its name comes from the file, not
// from dpkg-deb, and dpkg -i downloads nothing, so there is no cache to
// clean.
func TestAptReadableFileTwoCommands(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-plain", Version: "1.2-3"})
	c := fakechroot.New(t).
		On("dpkg -i", fakechroot.Result{Took: 2 * time.Second}).
		On("dpkg-query", installed("aminator-plain", "1.2-3"))
	d, log := newDriver(t, &apt.Backend{}, c, nil)
	ref, err := d.Parse(deb)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Provision(context.Background(), c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-plain" || info.FullVersion != "1.2-3" || info.InstallTime != 2*time.Second {
		t.Errorf("info %+v", info)
	}
	if len(info.Installed) != 2 || info.Installed[0].Name != "base-files" || info.Installed[1].Name != "aminator-plain" {
		t.Errorf("installed %+v", info.Installed)
	}
	wantCommands(t, c, "dpkg -i /tmp/aminator-", dpkgQuery)
	if got := c.Commands()[1]; strings.HasSuffix(got, "aminator-plain") {
		t.Errorf("the package was queried alone: %q", got)
	}
	if !strings.Contains(log.String(), "no package cache to clean") {
		t.Errorf("no word on the skipped clean:\n%s", log)
	}
	noStaging(t, c)
}

// Where the host reads dpkg's status file (no dpkg run left updates to
// merge), dpkg -i is the only command: the package and the manifest are
// read from the file, as dpkg-query lists them.
func TestAptStatusFileReadOnHost(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-plain", Version: "1:1.2-3"})
	c := fakechroot.New(t).On("dpkg -i", fakechroot.Result{Took: 2 * time.Second})
	admin := filepath.Join(c.Path(), "var", "lib", "dpkg")
	os.MkdirAll(filepath.Join(admin, "updates"), 0o755)
	status := "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n\n" +
		"Package: aminator-plain\nStatus: install ok installed\nArchitecture: all\nVersion: 1:1.2-3\n"
	if err := os.WriteFile(filepath.Join(admin, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(deb)
	info, err := d.Provision(context.Background(), c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-plain" || info.FullVersion != "1:1.2-3" || info.Release != "3" || info.Arch != "all" {
		t.Errorf("info %+v", info)
	}
	if len(info.Installed) != 2 || info.Installed[0].Name != "aminator-plain" || info.Installed[1].Version != "12.4" {
		t.Errorf("installed %+v", info.Installed)
	}
	wantCommands(t, c, "dpkg -i /tmp/aminator-")
	if m, err := d.Manifest(context.Background(), c); err != nil || len(m) != 2 {
		t.Errorf("manifest %+v %v", m, err)
	}
	wantCommands(t, c, "dpkg -i /tmp/aminator-")

	// A package the file does not show installed is dpkg-query's to say.
	os.WriteFile(filepath.Join(admin, "status"), []byte("Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n"), 0o644)
	c.On("dpkg-query", fakechroot.Fail(1, "dpkg-query: no packages found matching aminator-plain\n"))
	if _, err := d.Provision(context.Background(), c, ref); err == nil {
		t.Error("installed although neither the file nor dpkg-query lists it")
	}
	wantCommands(t, c, "dpkg -i", "dpkg -i", dpkgQuery)
}

// apt-get -f install may "fix" a .deb dpkg could not unpack by leaving it
// uninstalled: dpkg's own words are then why the bake failed.
func TestAptFixThatRemovesSurfacesDpkg(t *testing.T) {
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-truncated\n")).
		On("dpkg -i", fakechroot.Fail(1, capture(t, "dpkg-truncated-deb.txt"))).
		On("dpkg-query", fakechroot.Fail(1, "dpkg-query: no packages found matching aminator-truncated\n"))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(packageFile(t, "truncated.deb"))
	_, err := d.Provision(context.Background(), c, ref)
	if err == nil || !strings.HasPrefix(firstLine(err), "install aminator-truncated: dpkg -i: dpkg-deb (subprocess): cannot copy archive member") {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "dpkg-deb", "dpkg -i", "apt-get -q update", "-f install --download-only", "-f install", "dpkg-query")
	noStaging(t, c)
}

// A failing postinst fails apt-get -f install too; its cause leads.
func TestAptFixFails(t *testing.T) {
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-postinst\n")).
		On("dpkg -i", fakechroot.Fail(1, capture(t, "dpkg-postinst.txt"))).
		On("-f install", fakechroot.Fail(100, capture(t, "apt-fix-postinst.txt")))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(packageFile(t, "postinst.deb"))
	_, err := d.Provision(context.Background(), c, ref)
	want := "install aminator-postinst: dpkg -i failed and apt-get -f install could not fix it: dpkg: installed aminator-postinst package post-installation script subprocess returned error exit status 3"
	if err == nil || firstLine(err) != want || !strings.Contains(err.Error(), "postinst-failing-on-purpose") {
		t.Errorf("error %v", err)
	}
}

// A full disk is nothing apt-get can fix: no update, no apt-get -f install.
func TestAptNoSpaceShortCircuits(t *testing.T) {
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-full\n")).
		On("dpkg -i", fakechroot.Fail(2, capture(t, "dpkg-no-space.txt")))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(packageFile(t, "full.deb"))
	_, err := d.Provision(context.Background(), c, ref)
	if err == nil || firstLine(err) != "install aminator-full: dpkg -i: dpkg: error creating directory './opt/full': No space left on device" {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "dpkg-deb", "dpkg -i")
	noStaging(t, c)
}

// Cancelling mid-install ends at once: no fix, nothing staged left.
func TestAptCancelMidInstall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-slow\n")).
		On("dpkg -i", fakechroot.Result{Block: true, Started: started, Output: "AMINATOR-TEST-SLEEPING\n"})
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(packageFile(t, "slow.deb"))
	go func() { <-started; cancel() }()
	_, err := d.Provision(ctx, c, ref)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "dpkg-deb", "dpkg -i")
	noStaging(t, c)
}

// The manifest keeps what dpkg says is installed.
func TestAptManifest(t *testing.T) {
	c := fakechroot.New(t).On("dpkg-query -W -f ${db:Status-Abbrev}", fakechroot.OK("ii \tbash\t5.2-1\tamd64\nrc \told\t1\tall\nii \tbase-files\t12.4\tall\n"))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	m, err := d.Manifest(context.Background(), c)
	if err != nil || len(m) != 2 || m[0].Name != "bash" || m[1].Version != "12.4" {
		t.Errorf("manifest %+v %v", m, err)
	}
}

// The provenance names the installed package's file by its SHA-256: a
// repository package's is hashed in apt's archives before apt-get clean
// (its epoch written %3a in the file name), a file's on the host.
func TestAptPackageDigest(t *testing.T) {
	ctx := context.Background()
	c := fakechroot.New(t).
		On("apt-get -q update").
		On("apt-cache show", fakechroot.OK("Package: hello\nVersion: 1:2.10-3\nArchitecture: amd64\n")).
		On(" install hello=1:2.10-3").
		On("dpkg-query", installed("hello", "1:2.10-3")).
		On("apt-get clean")
	c.WriteFile("var/cache/apt/archives/hello-doc_1%3a2.10-3_all.deb", "another package")
	c.WriteFile("var/cache/apt/archives/hello_1%3a2.10-3_amd64.deb", "the package")
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse("hello")
	ref, _, err := d.Resolve(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Provision(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := testutil.SHA256Hex([]byte("the package")); info.SHA256 != want {
		t.Errorf("repository package's SHA-256 %q, want %q", info.SHA256, want)
	}

	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-plain", Version: "1.2-3"})
	c = fakechroot.New(t).On("dpkg -i").On("dpkg-query", installed("aminator-plain", "1.2-3"))
	d, _ = newDriver(t, &apt.Backend{}, c, nil)
	ref, _ = d.Parse(deb)
	if info, err = d.Provision(ctx, c, ref); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if want := testutil.SHA256Hex(b); info.SHA256 != want {
		t.Errorf("file package's SHA-256 %q, want %q", info.SHA256, want)
	}
}

// A private copy made before Provision (Inspect's, removed by the bake's
// undo) is hashed but left in place; only a copy Provision makes itself
// is removed by it.
func TestAptLeavesInspectsCopy(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-plain", Version: "1.2-3"})
	c := fakechroot.New(t).On("dpkg -i").On("dpkg-query", installed("aminator-plain", "1.2-3"))
	d, _ := newDriver(t, &apt.Backend{}, c, nil)
	ref, _ := d.Parse(deb)
	ref.Private = true
	info, err := d.Provision(context.Background(), c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(deb); err != nil {
		t.Errorf("Provision removed a copy it did not make: %v", err)
	}
	if info.SHA256 == "" {
		t.Error("the package was not hashed")
	}
}
