package e2etest

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/sbomschema"
)

// CheckSBOMs checks image id's stored SBOMs as a user would: both
// validate against the official SPDX 2.3 and CycloneDX 1.6 schemas, and
// the SPDX document lists exactly the packages dpkg-query lists in the
// image's disk (root filesystem on partition part, 0: the whole disk),
// as "NAME VERSION ARCH". It returns how many.
func (c *Cloud) CheckSBOMs(t *testing.T, id string, part int) int {
	t.Helper()
	spdxDoc := []byte(MustOK(t, c.Aminate(t, "images", "sbom", id, "--format", "spdx")))
	cdxDoc := []byte(MustOK(t, c.Aminate(t, "images", "sbom", id, "--format", "cyclonedx")))
	spdxSchema, cdxSchema := sbomschema.Load(t)
	sbomschema.Validate(t, spdxSchema, id+"'s SPDX document", spdxDoc)
	sbomschema.Validate(t, cdxSchema, id+"'s CycloneDX document", cdxDoc)
	var disk []string
	c.Inspect(t, id, part, func(root string) {
		out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
			"-f", "${Package} ${Version} ${Architecture}\n").Output()
		if err != nil {
			t.Fatalf("dpkg-query in %s's disk: %v", id, err)
		}
		disk = sortedLines(string(out))
	})
	got := spdxPackages(t, spdxDoc)
	if strings.Join(got, "\n") != strings.Join(disk, "\n") {
		t.Errorf("%s: the SPDX document's packages are not dpkg-query's:\nSBOM %d: %v\ndisk %d: %v", id, len(got), got, len(disk), disk)
	}
	return len(got)
}

// spdxPackages lists an SPDX document's packages as dpkg-query would,
// "NAME VERSION ARCH", sorted; the image itself (no purl) is not one.
func spdxPackages(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Packages []struct {
			Name    string `json:"name"`
			Version string `json:"versionInfo"`
			Refs    []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range d.Packages {
		for _, r := range p.Refs {
			if r.Type != "purl" {
				continue
			}
			arch := ""
			if i := strings.Index(r.Locator, "arch="); i >= 0 {
				arch = strings.SplitN(r.Locator[i+len("arch="):], "&", 2)[0]
			}
			out = append(out, p.Name+" "+p.Version+" "+arch)
		}
	}
	sort.Strings(out)
	return out
}

func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}
