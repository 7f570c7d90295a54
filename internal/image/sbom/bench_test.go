package sbom

import (
	"os"
	"testing"
)

// BenchmarkHost is an SBOM of this host's own root, as a bake would make
// one of its image: the dpkg database (hundreds of packages), each
// package's copyright file, and both documents; read-status-only is the
// status file without the copyright files, to tell the two costs apart. Issue 21 gives SBOM and
// provenance together 0.1 s of a bake.
func BenchmarkHost(b *testing.B) {
	if _, err := os.Stat("/" + dpkgStatus); err != nil {
		b.Skip("no dpkg database on this host")
	}
	inv, err := Read("/", Options{})
	if err != nil {
		b.Fatal(err)
	}
	s := subject("bash")
	status, err := os.ReadFile("/" + dpkgStatus)
	if err != nil {
		b.Fatal(err)
	}
	statusOnly := tree(b, map[string]string{dpkgStatus: string(status)})
	b.Run("read-status-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := Read(statusOnly, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := Read("/", Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("spdx", func(b *testing.B) {
		for b.Loop() {
			if _, err := SPDX(inv, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cyclonedx", func(b *testing.B) {
		for b.Loop() {
			if _, err := CycloneDX(inv, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			inv, err := Read("/", Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := SPDX(inv, s); err != nil {
				b.Fatal(err)
			}
			if _, err := CycloneDX(inv, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all-licences-known", func(b *testing.B) { // a bake: the base's licences reused
		opt := Options{Licences: inv.Licences()}
		for b.Loop() {
			inv, err := Read("/", opt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := SPDX(inv, s); err != nil {
				b.Fatal(err)
			}
			if _, err := CycloneDX(inv, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(len(inv.Packages)), "packages")
}
