package service

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// An EC2 bakery worker reports its pools to the scheduler: PooledIn (the
// worker's Pools, which the scheduler reads from its presence) counts the
// ready pool volumes of this instance by base image, as it does the local
// cloud's. Before the pool was a capability it asserted the local cloud
// and reported nothing on EC2. On moto (skipped when it is not installed).
func TestPooledInOnEC2(t *testing.T) {
	e := ec2test.Start(t)
	ctx := context.Background()
	cfg := ec2Config(t)
	log := slog.New(slog.DiscardHandler)
	if got, err := PooledIn(ctx, cfg, e.Region); err != nil || len(got) != 0 {
		t.Fatalf("before a fill: %v, %v; want none", got, err)
	}
	c, err := OpenCloud(ctx, cfg, "ec2", log)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(c)
	snap, made, err := FillPool(ctx, cfg, c, "ec2", e.BaseID, "", 2, log)
	if err != nil || made != 2 {
		t.Fatalf("fill: made %d, %v", made, err)
	}
	t.Cleanup(func() { DrainPool(context.Background(), c, "ec2", "") })
	got, err := PooledIn(ctx, cfg, e.Region)
	if want := map[string]int{e.BaseID: 2}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("pooled %v, %v; want %v", got, err, want)
	}
	// A refill names the snapshot alone: the pool stays the base's.
	if _, _, err := FillPool(ctx, cfg, c, "ec2", "", snap, -1, log); err != nil {
		t.Fatal(err)
	}
	if n, err := DrainPool(ctx, c, "ec2", e.BaseID); err != nil || n != 2 {
		t.Errorf("drain: %d, %v", n, err)
	}
	if got, err := PooledIn(ctx, cfg, e.Region); err != nil || len(got) != 0 {
		t.Errorf("after a drain: %v, %v; want none", got, err)
	}
}

// A cloud without a pool says so, naming the cloud and the capability.
func TestPoolMissingCapability(t *testing.T) {
	_, err := PoolOf(struct{ plugin.Cloud }{}, "someother")
	if err == nil || err.Error() != "the someother cloud has no volume pool: capability not implemented (choose another cloud with --cloud or -e)" {
		t.Errorf("%v", err)
	}
}

// ec2Config is testConfig in the ec2_apt_linux environment, polling moto
// quickly.
func ec2Config(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra.yml")
	if err := os.WriteFile(extra, []byte("plugins:\n  cloud.ec2:\n    poll_interval: 50ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{SystemDir: filepath.Join(dir, "etc"), UserDir: filepath.Join(dir, "home"), Env: []string{}, Extra: extra,
		Flags: map[string]string{"state_dir": filepath.Join(dir, "state"), "log_dir": filepath.Join(dir, "log"), "lock_dir": filepath.Join(dir, "lock"),
			"store_fs": "none", "environment": "ec2_apt_linux"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
