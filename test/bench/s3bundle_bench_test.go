package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/testutil"
)

// bundleDisk makes a 2 GiB ext4 disk holding about 1 GiB: the Debian
// minbase (about 0.2 GiB), 400 MiB of this machine's /usr (programs,
// libraries, text: what images hold) and 400 MiB of random data (what
// does not compress: packed assets, jars). It returns the disk and its
// allocated bytes.
func bundleDisk(b *testing.B, work string) (string, int64) {
	img := filepath.Join(work, "disk.img")
	sh(b, "cp", "--sparse=always", testutil.DebianBase(b), img)
	sh(b, "truncate", "-s", "2G", img)
	sh(b, "e2fsck", "-f", "-y", img)
	sh(b, "resize2fs", "-p", img)
	mnt := filepath.Join(work, "mnt")
	os.MkdirAll(mnt, 0o755)
	sh(b, "unshare", "-m", "--propagation", "private", "sh", "-euc",
		`mount -o loop "$1" "$2"
		(tar -c /usr 2>/dev/null || true) | head -c 400M > "$2/opt/usr.tar"
		dd if=/dev/urandom of="$2/opt/random" bs=1M count=400 status=none
		umount "$2"`, "sh", img, mnt)
	return img, allocated(b, img)
}

func benchIdentity(b *testing.B) s3bundle.Options {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	c, _ := x509.ParseCertificate(der)
	return s3bundle.Options{Account: "123456789012", Arch: "x86_64", UserCert: c, Key: k, Region: "us-east-1"}
}

// baselineBundle runs the AMI tools' pipeline (ec2-bundle-image's tar,
// tee to sha1, gzip -9, openssl enc, then split into 10 MiB parts).
func baselineBundle(b *testing.B, img, out string) (time.Duration, int64) {
	key, iv := make([]byte, 16), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	os.MkdirAll(out, 0o755)
	script := fmt.Sprintf(`tar -c -h -S --owner 0 --group 0 -C %s %s | tee >(sha1sum > %s/digest) | gzip -9 |
		openssl enc -e -aes-128-cbc -K %s -iv %s | split -b 10M -a 2 -d - %s/%s.part.; wait`,
		filepath.Dir(img), filepath.Base(img), out, hex.EncodeToString(key), hex.EncodeToString(iv), out, filepath.Base(img))
	start := time.Now()
	if o, err := exec.Command("bash", "-o", "pipefail", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("baseline: %v: %s", err, o)
	}
	return time.Since(start), dirBytes(b, out, ".part.")
}

func dirBytes(b *testing.B, dir, contains string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.Contains(e.Name(), contains) {
			n += fi.Size()
		}
	}
	return n
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// BenchmarkS3Bundle bundles a disk with about 1 GiB of data with the Go
// bundler (at the AMI tools' gzip -9 and at the default level 6) and with
// the AMI tools' shell pipeline, in the same run, and prints MB/s of
// image data and the ratios.
func BenchmarkS3Bundle(b *testing.B) {
	testutil.RequireRoot(b)
	work := b.TempDir()
	img, data := bundleDisk(b, work)
	sh(b, "cat", img) // warm the page cache for every contender alike
	o := benchIdentity(b)
	mbps := func(d time.Duration) float64 { return float64(data) / 1e6 / d.Seconds() }
	for b.Loop() {
		b.Logf("disk: %d MiB, %d MiB of data; cores %d; load average before: %s", 2048, data>>20, runtimeCPUs(), loadAvg())
		base, baseSize := baselineBundle(b, img, filepath.Join(work, "baseline"))
		os.RemoveAll(filepath.Join(work, "baseline"))
		b.Logf("baseline (tar|tee sha1sum|gzip -9|openssl enc|split): %v, %.0f MB/s, bundle %d MiB; load %s", base.Round(time.Millisecond), mbps(base), baseSize>>20, loadAvg())
		for _, level := range []int{9, s3bundle.DefaultLevel, 1} {
			dir := filepath.Join(work, fmt.Sprint("go", level))
			os.MkdirAll(dir, 0o755)
			o.Level = level
			start := time.Now()
			res, err := s3bundle.Bundle(context.Background(), img, dir, o)
			if err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			b.Logf("s3bundle, gzip level %d: %v, %.0f MB/s, bundle %d MiB, %.2fx the baseline; load %s",
				level, d.Round(time.Millisecond), mbps(d), res.Manifest.Bundled>>20, base.Seconds()/d.Seconds(), loadAvg())
			os.RemoveAll(dir)
		}
	}
}

func runtimeCPUs() int { return runtime.NumCPU() }

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkGzipLevels compresses 150 MiB of this machine's /usr/lib on one
// core with GNU gzip -9 (the AMI tools') and with klauspost/compress's
// flate (what pgzip runs on every core) at levels 6 to 9: why the
// bundler's default is 6.
func BenchmarkGzipLevels(b *testing.B) {
	sample := filepath.Join(b.TempDir(), "sample")
	sh(b, "sh", "-c", `(tar -c /usr/lib 2>/dev/null || true) | head -c 150M > "$1"`, "sh", sample)
	data, err := os.ReadFile(sample)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		start := time.Now()
		out, err := exec.Command("sh", "-c", `gzip -9 < "$1" | wc -c`, "sh", sample).Output()
		if err != nil {
			b.Fatal(err)
		}
		base := time.Since(start)
		b.Logf("gzip -9: %v, %s bytes; load %s", base.Round(time.Millisecond), strings.TrimSpace(string(out)), loadAvg())
		for _, level := range []int{6, 7, 8, 9} {
			c := &byteCounter{}
			w, _ := kflate.NewWriter(c, level)
			start := time.Now()
			w.Write(data)
			w.Close()
			d := time.Since(start)
			b.Logf("klauspost flate %d: %v, %d bytes, %.2fx gzip -9's speed on one core; load %s", level, d.Round(time.Millisecond), c.n, base.Seconds()/d.Seconds(), loadAvg())
		}
	}
}
