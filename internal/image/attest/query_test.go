package attest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/sbom"
)

// Each image's versions compare in its own package manager's order:
// epochs first, '~' before anything (even the end), a revision or release
// after the upstream version.
func TestHas(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	images := map[string]*sbom.Inventory{
		"deb-bookworm": inventory(sbom.KindDeb, "openssl 3.0.11-1~deb12u2", "libssl3 3.0.11-1~deb12u2"),
		"deb-old":      inventory(sbom.KindDeb, "openssl 3.0.9-1"),
		"deb-epoch":    inventory(sbom.KindDeb, "openssl 1:1.1.1w-0+deb11u1"),
		"deb-rc":       inventory(sbom.KindDeb, "openssl 3.1~rc1-1"),
		"deb-multi":    inventory(sbom.KindDeb, "openssl 3.0.13-1 amd64", "openssl 3.0.13-1 i386"),
		"rpm-el9":      inventory(sbom.KindRPM, "openssl 1:3.0.7-27.el9 x86_64"),
		"rpm-fc40":     inventory(sbom.KindRPM, "openssl 3.2.2-6.fc40 x86_64"),
		"rpm-rc":       inventory(sbom.KindRPM, "openssl 3.1~rc1-1.fc39 x86_64"),
		"no-openssl":   inventory(sbom.KindDeb, "bash 5.2.15-2+b7"),
	}
	for id, inv := range images {
		if err := s.Put(ctx, id, inv, docs(id)[0]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		query string
		want  []string // IMAGE VERSION ARCH
	}{
		{"openssl", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-epoch 1:1.1.1w-0+deb11u1", "deb-multi 3.0.13-1", "deb-multi 3.0.13-1 i386", "deb-old 3.0.9-1", "deb-rc 3.1~rc1-1", "rpm-el9 1:3.0.7-27.el9 x86_64", "rpm-fc40 3.2.2-6.fc40 x86_64", "rpm-rc 3.1~rc1-1.fc39 x86_64"}},
		{"openssl=3.0.11-1~deb12u2", []string{"deb-bookworm 3.0.11-1~deb12u2"}},
		{"openssl==0:3.0.9-1", []string{"deb-old 3.0.9-1"}}, // epoch 0 is no epoch
		// 3.0.x: the upstream version's first components, any epoch.
		{"openssl=3.0.x", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-multi 3.0.13-1", "deb-multi 3.0.13-1 i386", "deb-old 3.0.9-1", "rpm-el9 1:3.0.7-27.el9 x86_64"}},
		{"openssl=3.0.*", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-multi 3.0.13-1", "deb-multi 3.0.13-1 i386", "deb-old 3.0.9-1", "rpm-el9 1:3.0.7-27.el9 x86_64"}},
		{"openssl=1:3.x", []string{"rpm-el9 1:3.0.7-27.el9 x86_64"}},
		{"openssl=1.1.1.x", []string{"deb-epoch 1:1.1.1w-0+deb11u1"}}, // 1.1.1w is in 1.1.1's series
		{"openssl=3.1.x", []string{"deb-rc 3.1~rc1-1", "rpm-rc 3.1~rc1-1.fc39 x86_64"}},
		// Ranges: 3.1~rc1 is before 3.1 (both orders); an epoch outweighs
		// any version.
		{"openssl>=3.0,<3.1", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-multi 3.0.13-1", "deb-multi 3.0.13-1 i386", "deb-old 3.0.9-1", "deb-rc 3.1~rc1-1", "rpm-rc 3.1~rc1-1.fc39 x86_64"}},
		{"openssl>=1:0", []string{"deb-epoch 1:1.1.1w-0+deb11u1", "rpm-el9 1:3.0.7-27.el9 x86_64"}},
		// 3.0.11-1~deb12u2 is before 3.0.11-1.
		{"openssl<3.0.11-1", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-old 3.0.9-1"}},
		{"openssl<=3.0.11-1~deb12u2", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-old 3.0.9-1"}},
		{"openssl>3.1", []string{"deb-epoch 1:1.1.1w-0+deb11u1", "rpm-el9 1:3.0.7-27.el9 x86_64", "rpm-fc40 3.2.2-6.fc40 x86_64"}},
		{"openssl = 3.0.x , >3.0.9-1", []string{"deb-bookworm 3.0.11-1~deb12u2", "deb-multi 3.0.13-1", "deb-multi 3.0.13-1 i386", "rpm-el9 1:3.0.7-27.el9 x86_64"}},
		{"libssl3", []string{"deb-bookworm 3.0.11-1~deb12u2"}},
		{"curl", nil},
	} {
		q, err := ParseQuery(c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		ms, err := s.Has(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var got []string
		for _, m := range ms {
			g := m.ImageID + " " + m.Version
			if m.Arch != "amd64" {
				g += " " + m.Arch
			}
			got = append(got, g)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.query, got, c.want)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	for q, want := range map[string]string{
		"":                  "no package name",
		"=3.0":              "no package name",
		"open/ssl":          `'/' is not allowed`,
		"openssl>=":         "no version after >=",
		"openssl=>3":        `'>' is not allowed`,
		"openssl!=3":        "no operator",
		"openssl~3":         "no operator",
		"openssl 3.0":       "no operator",
		"openssl<3.x":       "goes with = only",
		"openssl=3.*.1":     "only as the last component",
		"openssl=.x":        "only as the last component",
		"openssl>=3.0,":     "an empty comparison",
		"openssl>=3.0,,<4":  "an empty comparison",
		"openssl=3.0/1":     `'/' is not allowed`,
		"openssl>=3.0;<3.1": `';' is not allowed`,
	} {
		_, err := ParseQuery(q)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "PACKAGE=3.0.x") {
			t.Errorf("ParseQuery(%q): %v, want an error saying %q and the syntax", q, err, want)
		}
	}
}

// A wildcard matches whole components of the upstream version.
func TestWildcard(t *testing.T) {
	q, err := ParseQuery("openssl=3.0.x")
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{
		"3.0-1": true, "3.0.11-1": true, "3.0.2~rc1-1": true, "3.0.11+dfsg-1": true, "2:3.0.1-1": true,
		"3.01-1": false, "3.1-1": false, "3.00.1-1": false, "3-1": false, "13.0.1-1": false,
	} {
		for _, kind := range []sbom.Kind{sbom.KindDeb, sbom.KindRPM} {
			if got := q.Matches(kind, v); got != want {
				t.Errorf("3.0.x on %s %s: %v, want %v", kind, v, got, want)
			}
		}
	}
}
