package ec2

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// standInRootPartition is where the EC2 stand-in disks keep the Debian
// base's filesystem.
const standInRootPartition = 3

var standIns struct {
	sync.Mutex
	paths map[bool]string
}

// ec2StandIn is the disk the EC2 tests' loop stand-in (loopBlockDevice)
// gives the bakes' volumes, as an EBS volume of a bootable AMI would be:
// the Debian base's filesystem on partition 3 of a GPT disk that EC2's
// firmware boots both ways (boot code, a BIOS boot partition, an ESP with
// \EFI\BOOT\BOOTX64.EFI), or, not bootable, the same with no loader (no
// boot code, an empty ESP). Each is made once a run; the moto base image
// is tagged with the root partition, as a foundation is.
func ec2StandIn(t *testing.T, e *ec2test.Env, bootable bool) string {
	t.Helper()
	if _, err := e.Client.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{e.BaseID},
		Tags: []types.Tag{{Key: aws.String("root_partition"), Value: aws.String(fmt.Sprint(standInRootPartition))}}}); err != nil {
		t.Fatal(err)
	}
	standIns.Lock()
	defer standIns.Unlock()
	if p, ok := standIns.paths[bootable]; ok {
		return p
	}
	dir, err := os.MkdirTemp(workDir(), "standin-")
	if err != nil {
		t.Fatal(err)
	}
	d := bootdisktest.Disk{Label: "gpt", BIOSBoot: true, ESP: true, Root: testutil.DebianBase(t)}
	if bootable {
		d.BootCode, d.Loaders = true, []string{"BOOTX64.EFI"}
	}
	p, part := bootdisktest.Make(t, dir, d)
	if part != standInRootPartition {
		t.Fatalf("the stand-in's root is partition %d", part)
	}
	if standIns.paths == nil {
		standIns.paths = map[bool]string{}
	}
	standIns.paths[bootable] = p
	return p
}

// aminate push registers an image with the boot mode its disk's loaders
// allow (RegisterImage's BootMode, which moto drops, seen on the way), and
// refuses a disk with no loader before any call to AWS: exit 2, the reason
// and the way out, nothing in EC2.
func ec2PushBootMode(t *testing.T) {
	e := startEC2(t)
	proxy := newAWSProxy(t, e.MotoURL)
	ctx := context.Background()
	snapshots := func() int {
		out, err := e.Client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Snapshots)
	}
	before := snapshots()
	r := aminateEnv(t, proxy.vars(e), "push", base(t))
	if r.Code != 2 || !strings.Contains(r.Stderr, "the disk has no boot loader: EC2's firmware would find nothing to boot") ||
		!strings.Contains(r.Stderr, "--allow-no-loader") {
		t.Fatalf("a loader-less push: exit %d\n%s", r.Code, r.Stderr)
	}
	proxy.mu.Lock()
	calls := len(proxy.forms) + len(proxy.puts)
	proxy.mu.Unlock()
	if calls != 0 || snapshots() != before || imagesNamed(ctx, t, e, baseName) != 0 {
		t.Errorf("the refused push made %d calls; snapshots %d -> %d; images named %s: %d", calls, before, snapshots(), baseName, imagesNamed(ctx, t, e, baseName))
	}

	disk, _ := bootdisktest.Make(t, t.TempDir(), bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	id := mustOK(t, aminate(t, "images", "import", "push-boot-mode", disk))
	defer aminate(t, "images", "rm", id)
	mustOK(t, aminateEnv(t, proxy.vars(e), "push", id))
	if reg := proxy.actions("RegisterImage"); len(reg) != 1 || reg[0].Get("BootMode") != "uefi-preferred" {
		t.Errorf("RegisterImage sent %v, want BootMode=uefi-preferred", reg)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(), "tmp", "esp-*")); len(left) != 0 {
		t.Errorf("the push left %v", left)
	}
}
