package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
)

// BenchmarkGraviton measures, in one run on this x86_64 host, a cloud
// foundation for arm64 (mmdebstrap's foreign mode: the tree's maintainer
// scripts under qemu-user) beside the same foundation for x86_64, then a
// launch of each like EC2 (arm64: AAVMF on qemu's virt machine, under TCG)
// to a working ssh login, one after another so that neither slows the
// other, and prints each figure and the arm64/x86_64 ratios:
//
//	go test ./test/bench -run '^$' -bench Graviton -benchtime 1x -v -timeout 40m
//
// AMINATOR_BENCH_ARM64_CPUS (qemu -cpu models separated by ";") also boots
// the arm64 foundation with each, to compare TCG's speed of CPU models.
func BenchmarkGraviton(b *testing.B) {
	testutil.RequireRoot(b)
	if err := binfmt.Check(binfmt.Dir, "arm64"); err != nil {
		b.Skipf("register qemu-user for arm64 first: %v", err)
	}
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
	defer func() { // the store filesystem, mounted by the first command
		cmd := exec.Command(e.bin, "init", "--unmount")
		cmd.Env = e.environ()
		cmd.Run()
	}()
	for i := 0; i < b.N; i++ {
		b.Logf("cores %d; load average before: %s", runtimeCPUs(), loadAvg())
		ids, took := map[string]string{}, map[string]time.Duration{}
		for _, arch := range []string{"x86_64", "arm64"} {
			start := time.Now()
			ids[arch] = strings.TrimSpace(string(e.run(b, "foundation", "--arch", arch, "-n", "bench-"+arch, "-s", fmt.Sprint(i))))
			took[arch] = time.Since(start)
			b.Logf("foundation %s: %s; load %s", arch, took[arch].Round(100*time.Millisecond), loadAvg())
		}
		boots := map[string]time.Duration{}
		for _, arch := range []string{"x86_64", "arm64"} {
			boots[arch] = benchLaunch(b, e, arch, ids[arch])
		}
		if cpus := os.Getenv("AMINATOR_BENCH_ARM64_CPUS"); cpus != "" {
			for _, cpu := range strings.Split(cpus, ";") {
				benchLaunch(b, &env{bin: e.bin, state: e.state, work: e.work, vars: []string{boottest.CPUEnv + "=" + cpu}}, "arm64 -cpu "+cpu, ids["arm64"])
			}
		}
		b.Logf("foundation arm64/x86_64: %.2fx; launch to ssh login arm64/x86_64: %.2fx",
			took["arm64"].Seconds()/took["x86_64"].Seconds(), boots["arm64"].Seconds()/boots["x86_64"].Seconds())
		b.ReportMetric(took["arm64"].Seconds(), "arm64-foundation-s")
		b.ReportMetric(took["x86_64"].Seconds(), "x86_64-foundation-s")
		b.ReportMetric(boots["arm64"].Seconds(), "arm64-login-s")
		b.ReportMetric(boots["x86_64"].Seconds(), "x86_64-login-s")
	}
}

// benchLaunch launches id like EC2 and returns the wall time of
// `aminate test` to a working ssh login, logging its stages.
func benchLaunch(b *testing.B, e *env, label, id string) time.Duration {
	b.Helper()
	start := time.Now()
	out := e.run(b, "test", "--output", "json", "--timeout", "10m", id)
	d := time.Since(start)
	var res boottest.Result
	if err := json.Unmarshal(out, &res); err != nil || !res.Passed {
		b.Fatalf("launch %s: %v %s", label, err, out)
	}
	var st []string
	for _, s := range res.Stages {
		st = append(st, fmt.Sprintf("%s@%.0fs", s.Name, s.After.Seconds()))
	}
	b.Logf("launch %s like EC2 (%s, %s) to ssh login: %s [%s]; load %s", label, res.BootMode, res.Accel, d.Round(100*time.Millisecond), strings.Join(st, " "), loadAvg())
	return d
}
