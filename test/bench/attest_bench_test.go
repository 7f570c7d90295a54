package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/testutil"
)

// newBenchEnv makes a work directory under /var/tmp and builds aminate
// into it, static as setup.sh builds it; close unmounts the store the
// first command mounted and removes the directory.
func newBenchEnv(b *testing.B, prefix string) (e *env, close func()) {
	testutil.RequireRoot(b)
	work, err := os.MkdirTemp("/var/tmp", prefix)
	if err != nil {
		b.Fatal(err)
	}
	e = &env{bin: filepath.Join(work, "aminate"), state: filepath.Join(work, "state"), work: work}
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/aminate")
	build.Dir, build.Env = testutil.RepoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(work)
		b.Fatalf("build: %v %s", err, out)
	}
	return e, func() {
		cmd := exec.Command(e.bin, "init", "--unmount")
		cmd.Env = e.environ()
		cmd.Run()
		os.RemoveAll(work)
	}
}

// BenchmarkAttest measures what attesting adds to a bake (issue 21: at
// most 0.1 s): the 100 MiB package with a postinst baked on the 1 GiB
// Debian minbase, imported with --attest, five times; it prints the
// median of the two attest stages (the package database read, then the
// SBOMs, provenance, signature and store) beside the bake's total; then
// aminate verify of the last image (which reads its whole disk again)
// beside sha256sum of the same disk exported raw, in the same run.
//
//	go test ./test/bench -run '^$' -bench Attest -benchtime 1x -v
func BenchmarkAttest(b *testing.B) {
	e, done := newBenchEnv(b, "aminator-bench-attest-")
	defer done()
	e.run(b, "images", "import", "--role", "base", "--attest", "base", testutil.DebianBase(b))
	deb := archPkg(b, e.work, "amd64")
	e.archBake(b, "base", deb, "warm")
	const rounds = 5
	var inv, att, sum, total []time.Duration
	load := loadavg()
	b.ResetTimer()
	var last figures
	for i := 0; i < rounds; i++ {
		last = e.archBake(b, "base", deb, fmt.Sprintf("r%d", i))
		i, a := last.stages["inventory"], last.stages["attest"]
		inv, att, sum, total = append(inv, i), append(att, a), append(sum, i+a), append(total, last.total)
	}
	b.StopTimer()
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\nmedian of %d bakes (load averages before: %s, after: %s)\n", rounds, load, loadavg())
	fmt.Fprintf(&tbl, "read the package database  %8.1f ms\n", ms1(median(inv)))
	fmt.Fprintf(&tbl, "SBOMs, provenance, keep    %8.1f ms\n", ms1(median(att)))
	fmt.Fprintf(&tbl, "attesting in all           %8.1f ms (target at most 100 ms)\n", ms1(median(sum)))
	fmt.Fprintf(&tbl, "the whole bake             %8.1f ms (attesting %.1f%% of it)\n", ms1(median(total)), 100*median(sum).Seconds()/median(total).Seconds())

	img := lastImage(b, e)
	start := time.Now()
	e.run(b, "verify", img)
	verify := time.Since(start)
	raw := filepath.Join(e.work, "disk.raw")
	e.run(b, "images", "export", "--format", "raw", img, raw)
	start = time.Now()
	sh(b, "sha256sum", raw)
	plain := time.Since(start)
	fmt.Fprintf(&tbl, "verify (reads the 1 GiB disk, checks the lineage) %.2f s; sha256sum of the disk exported raw %.2f s; ratio %.2fx\n",
		verify.Seconds(), plain.Seconds(), verify.Seconds()/plain.Seconds())
	b.Log(tbl.String())
	fmt.Print(tbl.String())
}

func ms1(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lastImage is the newest image's id.
func lastImage(b *testing.B, e *env) string {
	out := strings.Fields(string(e.run(b, "images", "list")))
	for _, f := range out {
		if strings.HasPrefix(f, "ami-") {
			return f
		}
	}
	b.Fatal("no image listed")
	return ""
}
