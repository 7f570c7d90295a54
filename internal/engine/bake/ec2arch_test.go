package bake

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// motoArm64 is the arm64 (Graviton) AMI moto ships.
const motoArm64 = "ami-0e9271c829888680e"

// On an EC2 build host of the other architecture, a Graviton base (or, on
// a Graviton host, an x86_64 one) is refused before any volume unless a
// binfmt_misc handler runs its programs, exactly as on the local cloud:
// the build host is this machine.
func TestEC2ForeignBaseNeedsEmulation(t *testing.T) {
	if binfmt.Host() != "x86_64" {
		t.Skip("moto's foreign image here is arm64: the test runs on x86_64 hosts")
	}
	ec2test.Start(t)
	s := ec2cloud.Defaults()
	s.PollInterval = 50 * time.Millisecond
	c, err := ec2cloud.New(context.Background(), s, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	d := plugin.Deps{Logger: log, StateDir: t.TempDir(), Cloud: c}
	env := &Environment{Name: "ec2", Cloud: c, Volume: noVolumes{t}, StateDir: d.StateDir,
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, d),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, d)}
	env.Binfmt.Dir = binfmtStandIn(t, nil)
	_, err = run(t, env, Request{BaseID: motoArm64, Package: "hello=2.10-3", Suffix: "s"})
	if err == nil || !strings.Contains(err.Error(), "aminate init --binfmt") {
		t.Errorf("a Graviton base on an x86_64 EC2 host without a handler: %v", err)
	}
	env.Binfmt.Dir = binfmtStandIn(t, map[string]string{"qemu": strings.ReplaceAll(debianHandler("arm64"), "flags: OC", "flags: POCF")})
	res, err := run(t, env, Request{BaseID: motoArm64, Package: "hello=2.10-3", Suffix: "s", DryRun: true})
	if err != nil || res.Plan == nil {
		t.Errorf("with a handler: %v", err)
	}
}
