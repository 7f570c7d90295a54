package pkgmgr_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/yum"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
)

const rpmQuery = "rpm -q --qf %{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n "

// A repository package: the metadata is refreshed (with the same retries
// as apt's update) and the install time is the install's alone, as apt's.
func TestYumRepoRefreshedAndTimedAsApt(t *testing.T) {
	ctx := context.Background()
	c := fakechroot.New(t)
	c.WriteFile("usr/bin/dnf", "#!/bin/sh\n")
	c.On("makecache", fakechroot.Fail(1, "Error: Failed to download metadata for repo 'base'\n"), fakechroot.Result{Took: 20 * time.Second}).
		On("clean metadata", fakechroot.Result{Took: 10 * time.Second}).
		On(" install aminator-rpmrepo", fakechroot.Result{Took: 5 * time.Second}).
		On(rpmQuery, fakechroot.OK("aminator-rpmrepo\t1\t3.1\t7\tnoarch\n"))
	d, _ := newDriver(t, &yum.Backend{Command: "auto", InstallOptions: []string{"--releasever=12"}}, c, nil)
	ref, err := d.Parse("aminator-rpmrepo")
	if err != nil {
		t.Fatal(err)
	}
	if ref, known, err := d.Resolve(ctx, c, ref); err != nil || known != nil || ref.Resolved {
		t.Errorf("Resolve: %+v %+v %v (dnf cannot tell before installing)", ref, known, err)
	}
	if _, known, err := d.Inspect(ctx, ref); err != nil || known != nil {
		t.Errorf("Inspect: %+v %v", known, err)
	}
	info, err := d.Provision(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-rpmrepo" || info.FullVersion != "1:3.1-7" || info.Release != "7" || info.InstallTime != 10*time.Second /* download, then install */ {
		t.Errorf("info %+v", info)
	}
	wantCommands(t, c, "dnf -y --releasever=12 clean metadata", "dnf -y --releasever=12 makecache",
		"dnf -y --releasever=12 clean metadata", "dnf -y --releasever=12 makecache",
		"dnf -y --releasever=12 install aminator-rpmrepo --downloadonly", "dnf -y --releasever=12 install aminator-rpmrepo -C", rpmQuery+"aminator-rpmrepo", "dnf -y --releasever=12 clean all")
}

// A missing package fails once, with dnf's reason first; yum is used
// when the image has no dnf.
func TestYumMissingPackage(t *testing.T) {
	c := fakechroot.New(t).On(" install ", fakechroot.Fail(1, "Last metadata expiration check: 0:00:01 ago.\nNo match for argument: aminator-no-such-rpm\nError: Unable to find a match: aminator-no-such-rpm\n"))
	d, _ := newDriver(t, &yum.Backend{Command: "auto"}, c, nil)
	ref, _ := d.Parse("aminator-no-such-rpm")
	_, err := d.Provision(context.Background(), c, ref)
	if err == nil || firstLine(err) != "install aminator-no-such-rpm: No match for argument: aminator-no-such-rpm" {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "yum -y clean metadata", "yum -y makecache", "yum -y install aminator-no-such-rpm --downloadonly")
}

// A local .rpm: staged, read, installed by dnf (which fetches its
// dependencies), queried by its exact name; no refresh, and a failure is
// final (there is no second command to complete it).
func TestYumFile(t *testing.T) {
	ctx := context.Background()
	c := fakechroot.New(t).
		On("rpm -q --qf %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n -p /tmp/aminator-", fakechroot.OK("aminator-rpmapp-1.0-2.noarch\n")).
		On("install /tmp/aminator-", fakechroot.Result{Took: 4 * time.Second}).
		On(rpmQuery, fakechroot.OK("aminator-rpmapp\t0\t1.0\t2\tnoarch\n"))
	d, _ := newDriver(t, &yum.Backend{Command: "dnf", NoGPGCheck: true}, c, func(o *pkgmgr.Options) { o.Clean = false })
	ref, err := d.Parse(packageFile(t, "app.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Provision(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.FullVersion != "1.0-2" || info.InstallTime != 8*time.Second /* download, then install */ {
		t.Errorf("info %+v", info)
	}
	wantCommands(t, c, "rpm -q --qf", "dnf -y --nogpgcheck install /tmp/aminator-", "dnf -y --nogpgcheck install /tmp/aminator-", rpmQuery+"aminator-rpmapp-1.0-2.noarch")
	if argv := c.Calls()[1].Argv; !strings.HasSuffix(argv[len(argv)-2], "/package.rpm") { // before --downloadonly
		t.Errorf("staged as %q", argv[len(argv)-2])
	}
	noStaging(t, c)

	c = fakechroot.New(t).
		On("rpm -q --qf", fakechroot.OK("aminator-rpmapp-1.0-2.noarch\n")).
		On("install /tmp/aminator-", fakechroot.Fail(1, "Error: \n Problem: conflicting requests\n  - nothing provides aminator-rpmdep needed by aminator-rpmapp-1.0-2.noarch\n"))
	d, _ = newDriver(t, &yum.Backend{Command: "dnf"}, c, nil)
	_, err = d.Provision(ctx, c, ref)
	if err == nil || !strings.HasPrefix(err.Error(), "install aminator-rpmapp-1.0-2.noarch: dnf -y install") || !strings.Contains(err.Error(), "nothing provides aminator-rpmdep") {
		t.Errorf("error %v", err)
	}
	wantCommands(t, c, "rpm -q --qf", "dnf -y install /tmp/aminator-") // the download fails first
	noStaging(t, c)
}

// rpm -q answering for two architectures is refused.
func TestYumQueryAmbiguous(t *testing.T) {
	c := fakechroot.New(t).On(rpmQuery, fakechroot.OK("x\t0\t1\t1\tx86_64\nx\t0\t1\t1\ti686\n"))
	d, _ := newDriver(t, &yum.Backend{Command: "dnf"}, c, nil)
	ref, _ := d.Parse("x")
	if _, err := d.Provision(context.Background(), c, ref); err == nil || !strings.Contains(err.Error(), "matches 2 installed packages") {
		t.Errorf("error %v", err)
	}
}

func TestYumManifest(t *testing.T) {
	c := fakechroot.New(t).On("rpm -qa", fakechroot.OK("bash\t5.2.26-4.el10\tx86_64\ngpg-pubkey\tabc-def\t(none)\n"))
	d, _ := newDriver(t, &yum.Backend{}, c, nil)
	m, err := d.Manifest(context.Background(), c)
	if err != nil || len(m) != 2 || m[0].Version != "5.2.26-4.el10" || pkgmgr.FormatOf(m) != pkgmgr.RPM {
		t.Errorf("manifest %+v %v", m, err)
	}
}
