// Package bench measures a bake against the naive way, in one run, as root:
//
//	go test ./test/bench -run '^$' -bench . -benchtime 1x -v
//
// From a base image of about 1 GiB of data it bakes a package of 100 MB of
// incompressible data with the volume pool on a reflink store, and reports
// per-stage times, the bake's overhead (total minus the package manager's
// own time), the bytes the snapshot added to the store, and the same for a
// naive baseline (full copy of the base as the volume, loop + mount +
// chroot dpkg -i, full copy as the snapshot). Then a second identical bake,
// and eight bakes from one base at once.
//
// BenchmarkBaseSize (base_size_bench_test.go) bakes the same package
// without the pool on bases of 0.2, 1 and 4 GiB of data, on a fresh
// default state directory, the plain store and the naive way, to show
// how the overhead grows with the base; BenchmarkChunkSize compares chunk
// sizes. Benchmarks print figures; none asserts a timing.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/testutil"
)

type env struct {
	bin, state, work string
	// vars are more environment variables for aminate (AMINATOR_STORE_FS=none).
	vars []string
}

func (e *env) environ() []string {
	return append(append(os.Environ(), "AMINATOR_STATE_DIR="+e.state, "AMINATOR_LOG_DIR="+filepath.Join(e.work, "log"), "AMINATOR_CONFIG_DIR="+e.work), e.vars...)
}

func (e *env) run(b *testing.B, args ...string) []byte {
	b.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.Fatalf("aminate %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

func sh(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// storeBytes is the bytes the chunk store holds.
func storeBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(filepath.Join(dir, "data", "store", "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// bigBase makes a raw ext4 image: the Debian minbase plus 800 MB of random
// data, about 1 GiB in all, in 2 GiB.
func bigBase(b *testing.B, work string) string {
	img, _ := sizedBase(b, work, 1<<30)
	return img
}

func pkg(b *testing.B, work, name string) string {
	root := filepath.Join(work, name)
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "opt", name), 0o755)
	os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte("Package: "+name+"\nVersion: 1.0-1\nArchitecture: all\nMaintainer: bench <b@example.invalid>\nDescription: 100 MB of random data\n"), 0o644)
	sh(b, "dd", "if=/dev/urandom", "of="+filepath.Join(root, "opt", name, "blob"), "bs=1M", "count=100", "status=none")
	out := filepath.Join(work, name+".deb")
	sh(b, "dpkg-deb", "--root-owner-group", "-Znone", "--build", root, out)
	return out
}

type figures struct {
	stages   map[string]time.Duration
	total    time.Duration
	install  time.Duration
	overhead time.Duration
	added    int64
	// id is the bake's (its log is LOG_DIR/id.log); wall is the whole
	// command's time, process start to exit (base size only).
	id   string
	wall time.Duration
}

func (e *env) bake(b *testing.B, deb, suffix string) figures {
	before := storeBytes(e.state)
	var r bake.Result
	if err := json.Unmarshal(e.run(b, "-b", "base", "-s", suffix, "--output", "json", deb), &r); err != nil {
		b.Fatal(err)
	}
	f := figures{stages: map[string]time.Duration{}, total: r.Duration, install: r.Package.InstallTime, added: storeBytes(e.state) - before, id: r.BakeID}
	for _, t := range r.Timings {
		f.stages[t.Stage] = t.Duration
	}
	f.overhead = f.total - f.install
	return f
}

// baseline bakes the naive way and returns its figures.
func baseline(b *testing.B, baseImg, deb, work string) figures {
	ctx := context.Background()
	f := figures{stages: map[string]time.Duration{}}
	stage := func(name string, fn func()) {
		start := time.Now()
		fn()
		f.stages[name] = time.Since(start)
	}
	start := time.Now()
	vol := filepath.Join(work, "naive-vol.img")
	stage("create volume", func() { sh(b, "cp", baseImg, vol) })
	var d *loop.Device
	stage("attach volume", func() {
		var err error
		if d, err = loop.Attach(ctx, vol, loop.Options{}); err != nil {
			b.Fatal(err)
		}
	})
	mnt := filepath.Join(work, "naive-mnt")
	os.MkdirAll(mnt, 0o755)
	stage("mount", func() {
		if err := mount.Mount(d.Path, mnt, "ext4", 0, ""); err != nil {
			b.Fatal(err)
		}
		for _, m := range [][3]string{{"proc", "proc", "proc"}, {"sysfs", "sys", "sysfs"}, {"/dev", "dev", ""}} {
			flags := uintptr(0)
			if m[2] == "" {
				flags = syscall.MS_BIND
			}
			if err := mount.Mount(m[0], filepath.Join(mnt, m[1]), m[2], flags, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	stage("provision", func() {
		sh(b, "cp", deb, filepath.Join(mnt, "tmp", "p.deb"))
		t := time.Now()
		sh(b, "chroot", mnt, "dpkg", "-i", "/tmp/p.deb")
		f.install = time.Since(t)
		os.Remove(filepath.Join(mnt, "tmp", "p.deb"))
	})
	stage("unmount", func() {
		for _, m := range []string{"dev", "sys", "proc", ""} {
			if err := mount.Unmount(ctx, filepath.Join(mnt, m), nil); err != nil {
				b.Fatal(err)
			}
		}
		d.Detach()
	})
	snap := filepath.Join(work, "naive-snap.img")
	stage("snapshot and register", func() { sh(b, "cp", vol, snap) })
	f.total = time.Since(start)
	f.overhead = f.total - f.install
	var st syscall.Stat_t
	syscall.Stat(snap, &st)
	f.added = st.Blocks * 512
	os.Remove(vol)
	os.Remove(snap)
	return f
}

var stageOrder = []string{"create volume", "attach volume", "mount", "provision", "unmount", "snapshot and register"}

// BenchmarkBake runs on a reflink store (aminate init --store-fs xfs, what
// the docs recommend when the state directory is on ext4) and on the plain
// ext4 state directory.
func BenchmarkBake(b *testing.B) {
	b.Run("xfs-reflink", func(b *testing.B) { benchBake(b, true) })
	b.Run("ext4", func(b *testing.B) { benchBake(b, false) })
}

func benchBake(b *testing.B, reflink bool) {
	testutil.RequireRoot(b)
	work, err := os.MkdirTemp("/var/tmp", "aminator-bench-")
	if err != nil {
		b.Fatal(err)
	}
	e := &env{bin: filepath.Join(work, "aminate"), state: filepath.Join(work, "state"), work: work}
	defer os.RemoveAll(work)
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/aminate")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v %s", err, out)
	}
	defer func() { // the store filesystem, mounted by init
		cmd := exec.Command(e.bin, "init", "--unmount")
		cmd.Env = append(os.Environ(), "AMINATOR_STATE_DIR="+e.state)
		cmd.Run()
	}()
	baseImg := bigBase(b, work)
	deb := pkg(b, work, "bench-blob")
	deb2 := pkg(b, work, "bench-blob-two")
	warm := pkg(b, work, "bench-warmup")
	if reflink {
		e.run(b, "init", "--store-fs", "xfs", "--store-size", "64")
	} else {
		e.vars = []string{"AMINATOR_STORE_FS=none"} // the plain store, not the automatic one
	}
	e.run(b, "images", "import", "--role", "base", "base", baseImg)
	e.run(b, "pool", "fill", "base", "--size", "2")
	// One bake first, as a bakery that has been running: the kernel makes
	// its loop devices on first use, which costs a few hundred ms once.
	e.bake(b, warm, "warmup")
	time.Sleep(3 * time.Second)

	b.ResetTimer()
	var pooled, second, noPool, naive figures
	for i := 0; i < b.N; i++ {
		pooled = e.bake(b, deb, fmt.Sprintf("pool%d", i))
		time.Sleep(3 * time.Second) // let the background refill finish
		second = e.bake(b, deb, fmt.Sprintf("again%d", i))
		time.Sleep(3 * time.Second)
		e.run(b, "pool", "drain")
		noPool = e.bake(b, deb2, fmt.Sprintf("nopool%d", i))
		naive = baseline(b, baseImg, deb, work)
	}
	b.StopTimer()

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%-24s %12s %12s %12s\n", "stage", "pool", "no pool", "baseline")
	for _, s := range stageOrder {
		fmt.Fprintf(&tbl, "%-24s %11.3fs %11.3fs %11.3fs\n", s, pooled.stages[s].Seconds(), noPool.stages[s].Seconds(), naive.stages[s].Seconds())
	}
	fmt.Fprintf(&tbl, "%-24s %11.3fs %11.3fs %11.3fs\n", "total", pooled.total.Seconds(), noPool.total.Seconds(), naive.total.Seconds())
	fmt.Fprintf(&tbl, "%-24s %11.3fs %11.3fs %11.3fs\n", "package manager", pooled.install.Seconds(), noPool.install.Seconds(), naive.install.Seconds())
	fmt.Fprintf(&tbl, "%-24s %11.3fs %11.3fs %11.3fs\n", "overhead", pooled.overhead.Seconds(), noPool.overhead.Seconds(), naive.overhead.Seconds())
	fmt.Fprintf(&tbl, "%-24s %10.1fMB %10.1fMB %10.1fMB\n", "bytes added", mb(pooled.added), mb(noPool.added), mb(naive.added))
	fmt.Fprintf(&tbl, "overhead ratio baseline/pool: %.1fx; bytes ratio baseline/pool: %.1fx; bytes added / package (100 MiB): %.2f\n",
		naive.overhead.Seconds()/pooled.overhead.Seconds(), float64(naive.added)/float64(pooled.added), float64(pooled.added)/float64(100<<20))
	fmt.Fprintf(&tbl, "second identical bake: %.3fs overhead, %.1f KB added\n", second.overhead.Seconds(), float64(second.added)/1e3)

	// Eight bakes from one base at once.
	e.run(b, "pool", "fill", "base", "--size", "8")
	start := time.Now()
	var wg sync.WaitGroup
	var failed int
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(e.bin, "-b", "base", "-s", fmt.Sprintf("par%d", i), deb)
			cmd.Env = e.environ()
			if out, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				b.Logf("parallel bake %d: %v\n%s", i, err, out)
			}
		}(i)
	}
	wg.Wait()
	par := time.Since(start)
	fmt.Fprintf(&tbl, "8 bakes at once: %d failed, %.2fs in all\n", failed, par.Seconds())
	b.Log(tbl.String())
	fmt.Print(tbl.String())

	b.ReportMetric(pooled.overhead.Seconds(), "overhead-s")
	b.ReportMetric(naive.overhead.Seconds(), "baseline-overhead-s")
	b.ReportMetric(naive.overhead.Seconds()/pooled.overhead.Seconds(), "overhead-ratio")
	b.ReportMetric(mb(pooled.added), "added-MB")
	b.ReportMetric(float64(naive.added)/float64(pooled.added), "bytes-ratio")
	b.ReportMetric(par.Seconds(), "8-parallel-s")
	if failed > 0 {
		b.Errorf("%d of 8 parallel bakes failed", failed)
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// smallFiles is a package of 500 files of 4 KiB of random data: a change
// spread over many places, where chunk size matters most.
func smallFiles(b *testing.B, work string) string {
	root := filepath.Join(work, "bench-small")
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte("Package: bench-small\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <b@example.invalid>\nDescription: many small files\n"), 0o644)
	buf := make([]byte, 4096)
	for i := 0; i < 500; i++ {
		d := filepath.Join(root, "opt", "small", fmt.Sprint(i%20))
		os.MkdirAll(d, 0o755)
		rand.Read(buf)
		os.WriteFile(filepath.Join(d, fmt.Sprint(i)), buf, 0o644)
	}
	out := filepath.Join(work, "bench-small.deb")
	sh(b, "dpkg-deb", "--root-owner-group", "-Znone", "--build", root, out)
	return out
}

// BenchmarkChunkSize bakes the same two packages (100 MiB in one file; 500
// files of 4 KiB) onto the same 1 GiB base with the store at 128 KiB,
// 512 KiB and 2 MiB chunks, on a reflink store with the pool, and reports
// the snapshot stage's time and the bytes each bake added.
func BenchmarkChunkSize(b *testing.B) {
	testutil.RequireRoot(b)
	top, err := os.MkdirTemp("/var/tmp", "aminator-chunks-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(top)
	bin := filepath.Join(top, "aminate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/aminate")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v %s", err, out)
	}
	baseImg := bigBase(b, top)
	big := pkg(b, top, "bench-blob")
	small := smallFiles(b, top)
	warm := pkg(b, top, "bench-warmup")
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%-10s %14s %14s %16s %16s %12s\n", "chunk", "100MiB: snap", "added", "500x4KiB: snap", "added", "store")
	for _, kib := range []int{128, 512, 2048} {
		work := filepath.Join(top, fmt.Sprint(kib))
		os.MkdirAll(work, 0o755)
		os.WriteFile(filepath.Join(work, "aminator.yml"), []byte(fmt.Sprintf("plugins:\n  cloud.local:\n    chunk_size: %d\n", kib<<10)), 0o644)
		e := &env{bin: bin, state: filepath.Join(work, "state"), work: work}
		e.run(b, "init", "--store-fs", "xfs", "--store-size", "32")
		func() {
			defer func() {
				cmd := exec.Command(bin, "init", "--unmount")
				cmd.Env = append(os.Environ(), "AMINATOR_STATE_DIR="+e.state)
				cmd.Run()
			}()
			e.run(b, "images", "import", "--role", "base", "base", baseImg)
			e.run(b, "pool", "fill", "base", "--size", "2")
			e.bake(b, warm, "warmup")
			time.Sleep(3 * time.Second)
			fb := e.bake(b, big, "big")
			time.Sleep(3 * time.Second)
			fs := e.bake(b, small, "small")
			fmt.Fprintf(&tbl, "%-10s %13.3fs %12.1fMB %15.3fs %14.1fMB %10.1fMB\n", fmt.Sprintf("%d KiB", kib),
				fb.stages["snapshot and register"].Seconds(), mb(fb.added), fs.stages["snapshot and register"].Seconds(), mb(fs.added), mb(storeBytes(e.state)))
			e.run(b, "pool", "drain")
		}()
	}
	b.Log(tbl.String())
	fmt.Print(tbl.String())
}
