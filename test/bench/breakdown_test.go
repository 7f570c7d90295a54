package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The base-size benchmark's breakdown of a bake's overhead: where the time
// beyond the package manager's own goes, from the bake's stage timings
// and its DEBUG log (the snapshot's phases). Figures only; nothing here
// is asserted.

// breakdownRows are the breakdown's lines, in order; overhead is the sum
// of all but the last two.
var breakdownRows = []string{
	"create volume", "attach volume", "mount",
	"provision beyond the package manager", "manifest, clean image, other stages", "unmount",
	"snapshot: find what changed (FIEMAP)", "snapshot: read, hash, store chunks", "snapshot: sync chunks",
	"snapshot: clone, manifest", "register, registry commits",
	"attest: read the package database", "attest: SBOMs, provenance, sign, keep",
	"undo (detach, delete volume), checks",
	"overhead", "command around the bake",
}

// snapStored reads the phases of the `snapshot stored` DEBUG line.
var snapStored = regexp.MustCompile(`\b(extents_at|chunks_at|synced_at|cached_at|took)=(\S+)`)

// breakdown splits f's overhead into breakdownRows, reading the bake's
// log in logDir for the snapshot's phases.
func breakdown(f figures, logDir string) map[string]time.Duration {
	out := map[string]time.Duration{}
	var named time.Duration
	for s, d := range f.stages {
		named += d
		switch s {
		case "create volume", "attach volume", "mount", "unmount":
			out[s] = d
		case "provision":
			out["provision beyond the package manager"] = d - f.install
		case "snapshot and register":
		case "inventory":
			out["attest: read the package database"] = d
		case "attest":
			out["attest: SBOMs, provenance, sign, keep"] = d
		default:
			out["manifest, clean image, other stages"] += d
		}
	}
	snap := f.stages["snapshot and register"]
	at := snapshotPhases(filepath.Join(logDir, f.id+".log"))
	out["snapshot: find what changed (FIEMAP)"] = at["extents_at"]
	out["snapshot: read, hash, store chunks"] = at["chunks_at"] - at["extents_at"]
	out["snapshot: sync chunks"] = at["synced_at"] - at["chunks_at"]
	out["snapshot: clone, manifest"] = at["took"] - at["synced_at"]
	out["register, registry commits"] = snap - at["took"]
	out["undo (detach, delete volume), checks"] = f.total - named
	out["overhead"] = f.overhead
	out["command around the bake"] = f.wall - f.total
	return out
}

// snapshotPhases reads the snapshot's phase times from a bake's log.
func snapshotPhases(log string) map[string]time.Duration {
	at := map[string]time.Duration{}
	fh, err := os.Open(log)
	if err != nil {
		return at
	}
	defer fh.Close()
	s := bufio.NewScanner(fh)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if !strings.Contains(s.Text(), `msg="snapshot stored"`) {
			continue
		}
		for _, m := range snapStored.FindAllStringSubmatch(s.Text(), -1) {
			if d, err := time.ParseDuration(m[2]); err == nil {
				at[m[1]] = d
			}
		}
	}
	return at
}

// median is the middle of ds (the mean of the two middle ones).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianBreakdown is each row's median over bakes.
func medianBreakdown(bs []map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, r := range breakdownRows {
		var ds []time.Duration
		for _, b := range bs {
			ds = append(ds, b[r])
		}
		out[r] = median(ds)
	}
	return out
}

// loadAverage is the 1-minute load average now ("?" if unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// ms is d in milliseconds, for the tables.
func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
