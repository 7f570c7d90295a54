package pkgmgr_test

import (
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
)

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		m    []plugin.Package
		want pkgmgr.Format
	}{
		{[]plugin.Package{{Name: "bash", Arch: "amd64"}, {Name: "tzdata", Arch: "all"}}, pkgmgr.Deb},
		{[]plugin.Package{{Name: "bash", Arch: "x86_64"}, {Name: "tzdata", Arch: "noarch"}}, pkgmgr.RPM},
		{[]plugin.Package{{Name: "aminator-rpmdep", Arch: "noarch"}}, pkgmgr.RPM},
		{[]plugin.Package{{Name: "odd", Arch: "s390x"}}, pkgmgr.Deb},
		{nil, pkgmgr.Deb},
	} {
		if got := pkgmgr.FormatOf(tc.m); got != tc.want {
			t.Errorf("FormatOf(%v) = %s, want %s", tc.m, got, tc.want)
		}
	}
}

// The two orders disagree where dpkg's and rpm's rules do.
func TestFormatCompare(t *testing.T) {
	for _, tc := range []struct {
		f    pkgmgr.Format
		a, b string
		want int
	}{
		{pkgmgr.Deb, "1.0a", "1.0.1", -1}, // dpkg: letters sort before '.'
		{pkgmgr.RPM, "1.0a", "1.0.1", -1},
		{pkgmgr.Deb, "1.0+b1", "1.0", 1},
		{pkgmgr.RPM, "1.0+b1", "1.0", 1},
		{pkgmgr.Deb, "1:1.0", "2.0", 1},
		{pkgmgr.RPM, "1.0_1", "1.0.1", 0}, // rpm: every separator is alike
		{pkgmgr.Deb, "2.0~rc1", "2.0", -1},
		{pkgmgr.RPM, "2.0^git1", "2.0", 1},
		{pkgmgr.RPM, "3.1-7.el9", "3.1-10.el9", -1},
	} {
		if got := tc.f.Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("%s.Compare(%q, %q) = %d, want %d", tc.f, tc.a, tc.b, got, tc.want)
		}
	}
	if pkgmgr.Deb.Ext() != ".deb" || pkgmgr.RPM.Ext() != ".rpm" {
		t.Error("Ext")
	}
}
