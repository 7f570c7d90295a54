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

// timedBake is a bake's figures with the whole command's wall-clock time
// (process start to exit: configuration, namespaces, store checks).
func (e *env) timedBake(b *testing.B, deb, suffix string) figures {
	b.Helper()
	start := time.Now()
	out := e.run(b, "-b", "base", "-s", suffix, "--output", "json", deb)
	wall := time.Since(start)
	var r bake.Result
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatal(err)
	}
	f := figures{stages: map[string]time.Duration{}, total: r.Duration, install: r.Package.InstallTime, id: r.BakeID, wall: wall}
	for _, t := range r.Timings {
		f.stages[t.Stage] = t.Duration
	}
	f.overhead = f.total - f.install
	return f
}

// storeRun is one store's bakes on one base: the first after the import,
// then the next ones (a steady state).
type storeRun struct {
	importTime time.Duration
	first      figures
	next       []figures
}

// steady is the median overhead and wall (minus the package manager) of
// the bakes after the first, and their breakdowns' medians.
func (r *storeRun) steady(logDir string) (overhead, wall time.Duration, parts map[string]time.Duration) {
	var o, w []time.Duration
	var bs []map[string]time.Duration
	for _, f := range r.next {
		o, w = append(o, f.overhead), append(w, f.wall-f.install)
		bs = append(bs, breakdown(f, logDir))
	}
	return median(o), median(w), medianBreakdown(bs)
}

// importBase imports the base into e's fresh state directory.
func (e *env) importBase(b *testing.B, r *storeRun, baseImg string) {
	start := time.Now()
	e.run(b, "images", "import", "--role", "base", "base", baseImg)
	r.importTime = time.Since(start)
}

// bakeRounds bakes the packages on each store in turn, one bake of each
// per round (in the other order every other round), so that every store
// meets the same load (other work on the machine) in each round.
func bakeRounds(b *testing.B, envs []*env, runs []*storeRun, debs []string) {
	time.Sleep(2 * time.Second) // let the imports' write-back settle
	for i, deb := range debs {
		for j := range envs {
			k := j
			if i%2 == 1 {
				k = len(envs) - 1 - j
			}
			f := envs[k].timedBake(b, deb, fmt.Sprintf("b%d", i))
			if i == 0 {
				runs[k].first = f
			} else {
				runs[k].next = append(runs[k].next, f)
			}
			time.Sleep(time.Second)
		}
	}
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

// benchBakes is how many packages each store bakes per base:
// AMINATOR_BENCH_BAKES, at least 2 (the first and one next), default 2.
func benchBakes(b *testing.B) int {
	n := 2
	if v := os.Getenv("AMINATOR_BENCH_BAKES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			b.Fatalf("AMINATOR_BENCH_BAKES %q: a number of at least 2", v)
		}
	}
	return n
}

// BenchmarkBaseSize bakes 100 MiB packages without the pool onto bases of
// 0.2, 1 and 4 GiB of data, on a fresh default state directory (on this
// ext4 host: the reflink store its first command sets up), and in the
// same run on the plain store (store_fs: none: volumes restored from
// chunks, snapshots reading every allocated chunk) and the naive way
// (full copies, see baseline). It prints the overhead (the bake's time
// minus the package manager's own) of each, for the first bake after the
// import and the median of the next ones, and where the default store's
// overhead goes (breakdown).
//
//	go test ./test/bench -run '^$' -bench BaseSize -benchtime 1x -v
//
// AMINATOR_BENCH_SIZES picks the sizes, AMINATOR_BENCH_BAKES the bakes per
// store (default 2), AMINATOR_BENCH_PLAIN=0 leaves the plain store out,
// and AMINATOR_BENCH_BEFORE names another aminate binary (built from an
// earlier commit) that bakes on a default store of its own beside this
// one, bake for bake in turn: a before and after under the same load.
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
	before := os.Getenv("AMINATOR_BENCH_BEFORE")
	plain := os.Getenv("AMINATOR_BENCH_PLAIN") != "0"
	var debs []string
	for i := range benchBakes(b) {
		debs = append(debs, pkg(b, top, fmt.Sprintf("bench-blob-%d", i)))
	}
	var tbl, parts strings.Builder
	fmt.Fprintf(&tbl, "\n%-9s | %-40s | %-40s | %-22s\n", "", "default (automatic reflink store)", "store_fs: none (plain store)", "naive")
	fmt.Fprintf(&tbl, "%-9s | %9s %9s %9s %10s | %9s %9s %9s %10s | %9s %12s\n", "base data",
		"import", "1st bake", "next", "next wall", "import", "1st bake", "next", "next wall", "overhead", "ratio")
	var detail strings.Builder
	var columns []string
	var cols []map[string]time.Duration
	for _, gib := range baseSizes(b) {
		work := filepath.Join(top, fmt.Sprint(gib))
		os.MkdirAll(work, 0o755)
		baseImg, data := sizedBase(b, work, int64(gib*float64(1<<30)))
		load := loadAverage()
		auto := &env{bin: bin, state: filepath.Join(work, "auto"), work: work}
		envs, runs := []*env{auto}, []*storeRun{{}}
		if before != "" {
			envs, runs = append(envs, &env{bin: before, state: filepath.Join(work, "before"), work: work}), append(runs, &storeRun{})
		}
		for k, e := range envs {
			e.importBase(b, runs[k], baseImg)
		}
		if _, err := os.Stat(filepath.Join(auto.state, "data.xfs")); err != nil {
			b.Fatalf("the default state directory got no reflink store: %v", err)
		}
		bakeRounds(b, envs, runs, debs)
		load += "-" + loadAverage()
		testutil.UnmountStores(work)
		rp := &storeRun{}
		if plain {
			pe := &env{bin: bin, state: filepath.Join(work, "plain"), work: work, vars: []string{"AMINATOR_STORE_FS=none"}}
			pe.importBase(b, rp, baseImg)
			bakeRounds(b, []*env{pe}, []*storeRun{rp}, debs)
		}
		naive := baseline(b, baseImg, debs[0], work)
		logDir := filepath.Join(work, "log")
		ao, aw, ab := runs[0].steady(logDir)
		po, pw, _ := rp.steady(logDir)
		fmt.Fprintf(&tbl, "%6.2f GiB | %8.2fs %8.3fs %8.3fs %9.3fs | %8.2fs %8.3fs %8.3fs %9.3fs | %8.3fs %5.1fx/%4.1fx\n", float64(data)/(1<<30),
			runs[0].importTime.Seconds(), runs[0].first.overhead.Seconds(), ao.Seconds(), aw.Seconds(),
			rp.importTime.Seconds(), rp.first.overhead.Seconds(), po.Seconds(), pw.Seconds(),
			naive.overhead.Seconds(), naive.overhead.Seconds()/ao.Seconds(), po.Seconds()/ao.Seconds())
		fmt.Fprintf(&detail, "%.2f GiB (load %s), default 1st, naive:", float64(data)/(1<<30), load)
		for _, s := range stageOrder {
			fmt.Fprintf(&detail, " %s %.3f %.3fs;", s, runs[0].first.stages[s].Seconds(), naive.stages[s].Seconds())
		}
		fmt.Fprintf(&detail, " package manager %.3f %.3fs\n", runs[0].first.install.Seconds(), naive.install.Seconds())
		size := fmt.Sprintf("%.2f GiB", float64(data)/(1<<30))
		if before != "" {
			_, _, bb := runs[1].steady(logDir)
			columns, cols = append(columns, size+" before"), append(cols, bb)
		}
		columns, cols = append(columns, size+" after"), append(cols, ab)
		fmt.Fprintf(&parts, "%s: naive overhead %s ms (ratio naive/after %.1fx); load %s\n", size, ms(naive.overhead), naive.overhead.Seconds()/ao.Seconds(), load)
		os.RemoveAll(work)
	}
	fmt.Fprintf(&tbl, "overhead = the bake's time minus the package manager's; wall = the whole command minus the package manager's; ratio = naive/default, plain/default (next bakes: median)\n%s", detail.String())
	fmt.Fprintf(&tbl, "\nwhere the default store's overhead goes, ms (median of the bakes after the first; before: AMINATOR_BENCH_BEFORE)\n| | %s |\n|---%s|\n", strings.Join(columns, " | "), strings.Repeat("|---", len(columns)))
	for _, r := range breakdownRows {
		fmt.Fprintf(&tbl, "| %s |", r)
		for _, c := range cols {
			fmt.Fprintf(&tbl, " %s |", ms(c[r]))
		}
		tbl.WriteString("\n")
	}
	tbl.WriteString(parts.String())
	b.Log(tbl.String())
	fmt.Print(tbl.String())
}
