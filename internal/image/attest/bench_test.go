package attest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/image/sbom"
)

// benchImages is how many images the query benchmarks search: issue 21
// asks for the package query over 1,000 stored SBOMs under 100 ms.
const benchImages = 1000

// hostPackages are up to n installed packages of this host's dpkg
// database (name, version, architecture), sorted by name.
func hostPackages(b *testing.B, n int) []sbom.Package {
	f, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		b.Skip("no dpkg database on this host")
	}
	defer f.Close()
	var out []sbom.Package
	var p sbom.Package
	installed := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	flush := func() {
		if installed && p.Name != "" && p.Version != "" {
			out = append(out, p)
		}
		p, installed = sbom.Package{}, false
	}
	for sc.Scan() {
		line := sc.Text()
		k, v, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			flush()
		case k == "Package":
			p.Name = v
		case k == "Version":
			p.Version = v
		case k == "Architecture":
			p.Arch = v
		case k == "Status":
			installed = strings.HasSuffix(v, " installed")
		}
	}
	flush()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// opensslVersions are the versions the images' openssl varies over:
// the 3.0 series with Debian's tilde revisions, one 3.1 candidate, 3.1,
// and an old one with an epoch.
var opensslVersions = []string{"3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "3.0.15-1~deb12u1", "3.0.19-1~deb12u2", "3.1~rc1-1", "3.1.4-2", "1:1.1.1w-0+deb11u1"}

// benchInventories are n Debian inventories of about 400 of this host's
// packages, image i's versions varied a little (a binNMU suffix on some
// packages, openssl's version from opensslVersions).
func benchInventories(b *testing.B, n int) []*sbom.Inventory {
	base := hostPackages(b, 400)
	out := make([]*sbom.Inventory, n)
	for i := range out {
		inv := &sbom.Inventory{Kind: sbom.KindDeb, Packages: make([]sbom.Package, 0, len(base)+2)}
		for j, p := range base {
			if (i+j)%7 == 0 {
				p.Version += fmt.Sprintf("+b%d", i%3+1)
			}
			inv.Packages = append(inv.Packages, p)
		}
		ov := opensslVersions[i%len(opensslVersions)]
		inv.Packages = append(inv.Packages,
			sbom.Package{Name: "openssl", Version: ov, Arch: "amd64"},
			sbom.Package{Name: "libssl3", Version: ov, Arch: "amd64"})
		out[i] = inv
	}
	return out
}

// benchDocs are real SPDX and CycloneDX documents of inv, and a
// provenance envelope of a typical size.
func benchDocs(b *testing.B, inv *sbom.Inventory) []Doc {
	sum := sha256.Sum256([]byte("a disk"))
	subj := sbom.Subject{Image: "bench", DiskDigest: hex.EncodeToString(sum[:]), Created: time.Unix(1_800_000_000, 0), Tool: "aminator", Version: "bench"}
	s, err := sbom.SPDX(inv, subj)
	if err != nil {
		b.Fatal(err)
	}
	c, err := sbom.CycloneDX(inv, subj)
	if err != nil {
		b.Fatal(err)
	}
	return []Doc{{Kind: KindSPDX, Body: s}, {Kind: KindCycloneDX, Body: c},
		{Kind: KindProvenance, Body: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + strings.Repeat("A", 4000) + `"}`)}}
}

// BenchmarkStore fills a store with 1,000 images' documents and
// inventories, then times a Put (replacing an image's) and the queries
// `openssl=3.0.x` and `openssl>=3.0.13,<3.1`; rows is how many packages
// each query returned.
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	invs := benchInventories(b, benchImages)
	docs := benchDocs(b, invs[0])
	s := newStore(b)
	start := time.Now()
	for i, inv := range invs {
		if err := s.Put(ctx, fmt.Sprintf("ami-%017x", i), inv, docs...); err != nil {
			b.Fatal(err)
		}
	}
	fill := time.Since(start)
	b.Logf("filled %d images of %d packages (documents %d+%d+%d bytes) in %v: %.1f ms per Put",
		len(invs), len(invs[0].Packages), len(docs[0].Body), len(docs[1].Body), len(docs[2].Body), fill, float64(fill.Milliseconds())/float64(len(invs)))
	b.Run("put-replace", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := s.Put(ctx, fmt.Sprintf("ami-%017x", i%len(invs)), invs[(i+1)%len(invs)], docs...); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, qs := range []string{"openssl=3.0.x", "openssl>=3.0.13,<3.1"} {
		q, err := ParseQuery(qs)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("has "+qs, func(b *testing.B) {
			var rows int
			for b.Loop() {
				m, err := s.Has(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				rows = len(m)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
