package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/testutil"
)

// sizedBase makes a raw ext4 image holding about data bytes: the Debian
// minbase (about 0.2 GiB) plus a file of random data for the rest, in an
// image half as big again as the data (1 GiB: 800 MB of random data in a
// 2 GiB image, bigBase). It returns the image and the bytes
// it really holds (its allocated blocks: what a store must read).
func sizedBase(b *testing.B, work string, data int64) (string, int64) {
	img := filepath.Join(work, "base.img")
	sh(b, "cp", "--sparse=always", testutil.DebianBase(b), img)
	gib := max(1, int64(math.Ceil(float64(data)*1.5/float64(1<<30))))
	sh(b, "truncate", "-s", fmt.Sprintf("%dG", gib), img)
	sh(b, "e2fsck", "-f", "-y", img)
	sh(b, "resize2fs", "-p", img)
	if fill := data - allocated(b, img); fill > 16<<20 {
		// In a mount namespace of its own: a process elsewhere that makes a
		// namespace while the image is mounted would keep its filesystem
		// (unwritten data included) alive after the unmount.
		mnt := filepath.Join(work, "basemnt")
		os.MkdirAll(mnt, 0o755)
		sh(b, "unshare", "-m", "--propagation", "private", "sh", "-euc",
			`mount -o loop "$1" "$2"; dd if=/dev/urandom of="$2/opt/filler" bs=1M count="$3" status=none; umount "$2"`,
			"sh", img, mnt, fmt.Sprint(fill>>20))
	}
	return img, allocated(b, img)
}

func allocated(b *testing.B, p string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		b.Fatal(err)
	}
	return st.Blocks * 512
}

// timedBake is a bake's figures plus the whole command's wall-clock time
// (process start to exit: configuration, namespaces, store checks).
func (e *env) timedBake(b *testing.B, deb, suffix string) (figures, time.Duration) {
	b.Helper()
	start := time.Now()
	out := e.run(b, "-b", "base", "-s", suffix, "--output", "json", deb)
	wall := time.Since(start)
	var r bake.Result
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatal(err)
	}
	f := figures{stages: map[string]time.Duration{}, total: r.Duration, install: r.Package.InstallTime}
	for _, t := range r.Timings {
		f.stages[t.Stage] = t.Duration
	}
	f.overhead = f.total - f.install
	return f, wall
}

// storeRun is one store's measured bakes on one base.
type storeRun struct {
	importTime    time.Duration
	first, steady figures
	firstWall     time.Duration
	steadyWall    time.Duration
}

// measureStore imports the base into a fresh state directory and bakes
// two 100 MiB packages without the pool: the first bake after the import,
// then another (a steady state).
func measureStore(b *testing.B, e *env, baseImg, deb1, deb2 string) storeRun {
	var r storeRun
	start := time.Now()
	e.run(b, "images", "import", "--role", "base", "base", baseImg)
	r.importTime = time.Since(start)
	time.Sleep(2 * time.Second) // let writeback settle between the measured steps
	r.first, r.firstWall = e.timedBake(b, deb1, "first")
	time.Sleep(2 * time.Second)
	r.steady, r.steadyWall = e.timedBake(b, deb2, "steady")
	return r
}

// baseSizes are the bases' data sizes in GiB: AMINATOR_BENCH_SIZES
// (comma-separated) or 0.2, 1 and 4.
func baseSizes(b *testing.B) []float64 {
	list := "0.2,1,4"
	if v := os.Getenv("AMINATOR_BENCH_SIZES"); v != "" {
		list = v
	}
	var out []float64
	for _, f := range strings.Split(list, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			b.Fatalf("AMINATOR_BENCH_SIZES %q: %v", list, err)
		}
		out = append(out, x)
	}
	return out
}

// BenchmarkBaseSize bakes a 100 MiB package without the pool onto bases of
// 0.2, 1 and 4 GiB of data, on a fresh default state directory (on this
// ext4 host: the reflink store its first command sets up), and in the
// same run on the plain store (store_fs: none: volumes restored from
// chunks, snapshots reading every allocated chunk) and the naive way
// (full copies, see baseline). It prints the overhead (the bake's time
// minus the package manager's own) of each, for the first bake after the
// import and for the next.
//
//	go test ./test/bench -run '^$' -bench BaseSize -benchtime 1x -v
func BenchmarkBaseSize(b *testing.B) {
	testutil.RequireRoot(b)
	top, err := os.MkdirTemp("/var/tmp", "aminator-basesize-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(top)
	defer testutil.UnmountStores(top)
	bin := filepath.Join(top, "aminate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/aminate")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v %s", err, out)
	}
	deb1 := pkg(b, top, "bench-blob")
	deb2 := pkg(b, top, "bench-blob-two")
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%-9s | %-40s | %-40s | %-22s\n", "", "default (automatic reflink store)", "store_fs: none (plain store)", "naive")
	fmt.Fprintf(&tbl, "%-9s | %9s %9s %9s %10s | %9s %9s %9s %10s | %9s %12s\n", "base data",
		"import", "1st bake", "next", "next wall", "import", "1st bake", "next", "next wall", "overhead", "ratio")
	var detail strings.Builder
	for _, gib := range baseSizes(b) {
		work := filepath.Join(top, fmt.Sprint(gib))
		os.MkdirAll(work, 0o755)
		baseImg, data := sizedBase(b, work, int64(gib*float64(1<<30)))
		auto := &env{bin: bin, state: filepath.Join(work, "auto"), work: work}
		plain := &env{bin: bin, state: filepath.Join(work, "plain"), work: work, vars: []string{"AMINATOR_STORE_FS=none"}}
		ra := measureStore(b, auto, baseImg, deb1, deb2)
		if _, err := os.Stat(filepath.Join(auto.state, "data.xfs")); err != nil {
			b.Fatalf("the default state directory got no reflink store: %v", err)
		}
		testutil.UnmountStores(work)
		rp := measureStore(b, plain, baseImg, deb1, deb2)
		naive := baseline(b, baseImg, deb1, work)
		fmt.Fprintf(&tbl, "%6.2f GiB | %8.2fs %8.3fs %8.3fs %9.3fs | %8.2fs %8.3fs %8.3fs %9.3fs | %8.3fs %5.1fx/%4.1fx\n", float64(data)/(1<<30),
			ra.importTime.Seconds(), ra.first.overhead.Seconds(), ra.steady.overhead.Seconds(), (ra.steadyWall - ra.steady.install).Seconds(),
			rp.importTime.Seconds(), rp.first.overhead.Seconds(), rp.steady.overhead.Seconds(), (rp.steadyWall - rp.steady.install).Seconds(),
			naive.overhead.Seconds(), naive.overhead.Seconds()/ra.steady.overhead.Seconds(), rp.steady.overhead.Seconds()/ra.steady.overhead.Seconds())
		fmt.Fprintf(&detail, "%.2f GiB, default 1st / next, plain 1st / next, naive:", float64(data)/(1<<30))
		for _, s := range stageOrder {
			fmt.Fprintf(&detail, " %s %.3f/%.3f %.3f/%.3f %.3fs;", s, ra.first.stages[s].Seconds(), ra.steady.stages[s].Seconds(),
				rp.first.stages[s].Seconds(), rp.steady.stages[s].Seconds(), naive.stages[s].Seconds())
		}
		fmt.Fprintf(&detail, " package manager %.3f/%.3f %.3f/%.3f %.3fs\n", ra.first.install.Seconds(), ra.steady.install.Seconds(),
			rp.first.install.Seconds(), rp.steady.install.Seconds(), naive.install.Seconds())
		os.RemoveAll(work)
	}
	fmt.Fprintf(&tbl, "overhead = the bake's time minus the package manager's; wall = the whole command minus the package manager's; ratio = naive/default, plain/default (next bake)\n%s", detail.String())
	b.Log(tbl.String())
	fmt.Print(tbl.String())
}
