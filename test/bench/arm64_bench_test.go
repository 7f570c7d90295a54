package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
)

// archPostinst is what the benchmark package's postinst runs: a few
// commands of the kind a service's package runs (a system user, its
// state directory, the linker cache, a config edit, a dpkg query).
const archPostinst = `useradd --system --no-create-home benchapp
install -d -o benchapp -m 0750 /var/lib/benchapp
sed -i 's/^port=.*/port=8080/' /etc/benchapp.conf
ldconfig
dpkg-query -W benchapp > /var/lib/benchapp/version`

// archPkg is a package of 100 MiB of incompressible data built for
// dpkg's architecture arch, with archPostinst.
func archPkg(b *testing.B, work, arch string) string {
	root := filepath.Join(work, "benchapp-"+arch)
	for _, d := range []string{"DEBIAN", "opt/benchapp", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte("Package: benchapp\nVersion: 1.0-1\nArchitecture: "+arch+
		"\nMaintainer: bench <b@example.invalid>\nDescription: 100 MiB of random data and a postinst\n"), 0o644)
	os.WriteFile(filepath.Join(root, "DEBIAN", "postinst"), []byte("#!/bin/sh\nset -e\n"+archPostinst+"\n"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "benchapp.conf"), []byte("port=80\n"), 0o644)
	sh(b, "dd", "if=/dev/urandom", "of="+filepath.Join(root, "opt", "benchapp", "blob"), "bs=1M", "count=100", "status=none")
	out := filepath.Join(work, "benchapp_"+arch+".deb")
	sh(b, "dpkg-deb", "--root-owner-group", "-Znone", "--build", root, out)
	return out
}

// archBake bakes deb on base and returns its figures, wall time included.
func (e *env) archBake(b *testing.B, base, deb, suffix string) figures {
	b.Helper()
	start := time.Now()
	out := e.run(b, "-b", base, "-s", suffix, "--output", "json", deb)
	wall := time.Since(start)
	var r bake.Result
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatal(err)
	}
	f := figures{stages: map[string]time.Duration{}, total: r.Duration, install: r.Package.InstallTime, id: r.BakeID, wall: wall}
	for _, t := range r.Timings {
		f.stages[t.Stage] = t.Duration
	}
	return f
}

// BenchmarkArm64Bake bakes the same 100 MiB package with a postinst on
// the x86_64 and the arm64 Debian minbase, in one run, one bake of each
// per round (in the other order every other round), and prints the
// median wall times and their ratio: on an x86_64 host the arm64 bake's
// package manager and postinst run under qemu-user.
//
//	go test ./test/bench -run '^$' -bench Arm64 -benchtime 1x -v
func BenchmarkArm64Bake(b *testing.B) {
	testutil.RequireRoot(b)
	if err := binfmt.View(binfmt.Dir, func(d string) error { return binfmt.Check(d, "arm64") }); err != nil {
		b.Fatal(err)
	}
	e, done := newBenchEnv(b, "aminator-bench-arm64-")
	defer done()
	work := e.work
	bases := map[string]string{"x86_64": testutil.DebianBase(b), "arm64": testutil.DebianArm64Base(b)}
	debs := map[string]string{"x86_64": archPkg(b, work, "amd64"), "arm64": archPkg(b, work, "arm64")}
	archs := []string{"x86_64", "arm64"}
	for _, a := range archs {
		e.run(b, "images", "import", "--role", "base", "--arch", a, "base-"+a, bases[a])
		e.archBake(b, "base-"+a, debs[a], "warm") // the first bake on a base reads it into the store's cache
	}
	time.Sleep(2 * time.Second)

	const rounds = 3
	runs := map[string][]figures{}
	loadBefore := loadavg()
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		for j := range archs {
			a := archs[(j+i)%2]
			runs[a] = append(runs[a], e.archBake(b, "base-"+a, debs[a], fmt.Sprintf("r%d", i)))
		}
	}
	b.StopTimer()

	med := func(a string, v func(figures) time.Duration) time.Duration {
		var ds []time.Duration
		for _, f := range runs[a] {
			ds = append(ds, v(f))
		}
		return median(ds)
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\nmedian of %d bakes each, on %s (load averages before: %s, after: %s)\n%-24s %12s %12s %8s\n",
		rounds, binfmt.Host(), loadBefore, loadavg(), "", "x86_64", "arm64", "ratio")
	row := func(name string, v func(figures) time.Duration) float64 {
		x, a := med("x86_64", v), med("arm64", v)
		ratio := a.Seconds() / x.Seconds()
		fmt.Fprintf(&tbl, "%-24s %11.3fs %11.3fs %7.2fx\n", name, x.Seconds(), a.Seconds(), ratio)
		return ratio
	}
	for _, s := range []string{"create volume", "mount", "provision", "unmount", "snapshot and register"} {
		row(s, func(f figures) time.Duration { return f.stages[s] })
	}
	row("package manager", func(f figures) time.Duration { return f.install })
	row("bake (total)", func(f figures) time.Duration { return f.total })
	ratio := row("wall (command)", func(f figures) time.Duration { return f.wall })
	fmt.Fprintf(&tbl, "each wall: x86_64 %v, arm64 %v\n", walls(runs["x86_64"]), walls(runs["arm64"]))
	b.Log(tbl.String())
	fmt.Print(tbl.String())
	b.ReportMetric(med("x86_64", func(f figures) time.Duration { return f.wall }).Seconds(), "x86_64-wall-s")
	b.ReportMetric(med("arm64", func(f figures) time.Duration { return f.wall }).Seconds(), "arm64-wall-s")
	b.ReportMetric(ratio, "arm64/x86_64")
}

func walls(fs []figures) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%.2fs", f.wall.Seconds()))
	}
	return out
}

// loadavg is the machine's load averages (1, 5 and 15 minutes).
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
