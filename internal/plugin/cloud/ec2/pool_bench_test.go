package ec2_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// noDevice stands in for the local disk: moto attaches nothing, so there
// is no device to wait for (on EC2 that wait is part of what an attached
// pool saves, and is not measured here).
type noDevice struct{ *blockdev.Linux }

func (noDevice) Locate(context.Context, plugin.Attachment) (string, error) { return "/dev/null", nil }

// volumeSetup is one mode of a bake's volume steps against moto.
type volumeSetup struct {
	name   string
	attach bool // pool_attach
	pool   bool
	rec    *ec2test.Recorder
	c      *ec2cloud.Cloud
	vols   plugin.Volumes
	took   time.Duration
	calls  int
}

func newSetup(b *testing.B, name string, pool, attach bool) *volumeSetup {
	s := ec2cloud.Defaults()
	s.PollInterval, s.PoolAttach = 20*time.Millisecond, attach
	x := &volumeSetup{name: name, pool: pool, attach: attach, rec: &ec2test.Recorder{}}
	dir := b.TempDir()
	x.c = newCloud(&testing.T{}, s, x.rec)
	x.c.UseDirs(dir, dir+"/lock")
	bd := noDevice{&blockdev.Linux{Letters: "fghijklmnop", LockDir: dir + "/lock", Attached: x.c, Dev: b.TempDir(), Sys: b.TempDir()}}
	reg, _ := plugin.Lookup(plugin.KindVolume, "linux")
	v, err := reg.New(nil, plugin.Deps{Cloud: x.c, BlockDevice: bd, Logger: nil})
	if err != nil {
		b.Fatal(err)
	}
	x.vols = v.(plugin.Volumes)
	return x
}

// run does one bake's volume steps: (refill the pool, untimed), create and
// attach (timed, calls counted), detach and delete (untimed).
func (x *volumeSetup) run(b *testing.B, base *plugin.Image) {
	ctx := context.Background()
	if x.pool {
		bd := noDevice{&blockdev.Linux{Letters: "fghijklmnop", LockDir: b.TempDir(), Attached: x.c, Dev: b.TempDir(), Sys: b.TempDir()}}
		if _, err := x.c.FillPool(ctx, plugin.PoolFill{Snapshot: base.Root().SnapshotID, Base: base.ID, Target: 1, Devices: bd}); err != nil {
			b.Fatal(err)
		}
	}
	snap, _ := x.c.Snapshot(ctx, base.Root().SnapshotID)
	n, start := x.rec.Count(""), time.Now()
	v, err := x.vols.Create(ctx, base, snap.SizeBytes, owner.Work("bench", ""))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := x.vols.Attach(ctx, v, ""); err != nil {
		b.Fatal(err)
	}
	x.took += time.Since(start)
	x.calls += x.rec.Count("") - n
	if err := x.vols.Detach(ctx, v); err != nil {
		b.Fatal(err)
	}
	if err := x.vols.Delete(ctx, v); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPoolVolumeSteps measures what the pool removes from a bake:
// the create-volume and attach steps (CreateVolume, its waiter,
// AttachVolume, its wait, the device-name check) against moto, without a
// pool (the baseline), with one, and with one kept attached; it reports
// the time and API calls of the two steps in each mode and the ratios.
func BenchmarkPoolVolumeSteps(b *testing.B) {
	e := ec2test.Start(b)
	modes := []*volumeSetup{newSetup(b, "none", false, false), newSetup(b, "pool", true, false), newSetup(b, "attached", true, true)}
	base, err := modes[0].c.Image(context.Background(), plugin.ImageQuery{ID: e.BaseID})
	if err != nil {
		b.Fatal(err)
	}
	for _, x := range modes {
		x.c.Host(context.Background()) // once per process, not per bake
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range modes {
			x.run(b, base)
		}
	}
	b.StopTimer()
	none := modes[0]
	for _, x := range modes {
		ms := float64(x.took.Microseconds()) / 1000 / float64(b.N)
		calls := float64(x.calls) / float64(b.N)
		b.ReportMetric(ms, "ms/steps-"+x.name)
		b.ReportMetric(calls, "calls/steps-"+x.name)
		if x != none {
			b.ReportMetric(float64(x.took)/float64(none.took), "time-ratio-"+x.name)
			b.ReportMetric(float64(x.calls)/float64(none.calls), "calls-ratio-"+x.name)
		}
		b.Log(fmt.Sprintf("%-8s create+attach: %.1f ms, %.1f calls", x.name, ms, calls))
	}
}
