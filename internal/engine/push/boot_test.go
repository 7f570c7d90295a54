package push_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// bootEnv is moto behind a recorder, and a local cloud.
type bootEnv struct {
	e   *ec2test.Env
	rec *ec2test.Recorder
	ec  *ec2cloud.Cloud
	lc  *local.Cloud
	dir string
}

func newBootEnv(t *testing.T) *bootEnv {
	t.Helper()
	bootdisktest.Need(t)
	b := &bootEnv{e: ec2test.Start(t), rec: &ec2test.Recorder{}, dir: t.TempDir()}
	ctx := context.Background()
	var err error
	if b.lc, err = local.Open(local.Options{StateDir: filepath.Join(b.dir, "state")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.lc.Close() })
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	if b.ec, err = ec2cloud.New(ctx, s, "", nil, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: b.rec}))); err != nil {
		t.Fatal(err)
	}
	return b
}

// image imports a disk made by bootdisktest as a local x86_64 image.
func (b *bootEnv) image(t *testing.T, name string, d bootdisktest.Disk) *plugin.Image {
	t.Helper()
	return b.imageArch(t, name, "x86_64", d)
}

// imageArch imports a disk made by bootdisktest as a local image of arch.
func (b *bootEnv) imageArch(t *testing.T, name, arch string, d bootdisktest.Disk) *plugin.Image {
	t.Helper()
	disk, _ := bootdisktest.Make(t, b.dir, d)
	im, err := b.lc.Import(context.Background(), disk, local.ImportOptions{Name: name, Architecture: arch, VirtualizationType: "hvm"})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// registered is the boot mode the last RegisterImage asked for ("": none).
func (b *bootEnv) registered(t *testing.T) string {
	t.Helper()
	r, ok := b.rec.Last("RegisterImage")
	if !ok {
		t.Fatal("no RegisterImage")
	}
	form, _ := url.ParseQuery(r.Form)
	return form.Get("BootMode")
}

// A pushed image is registered with the boot mode its disk's loaders
// allow (moto keeps none: the request is checked), or its own local boot
// mode when the disk boots it.
func TestPushRegistersTheDisksBootMode(t *testing.T) {
	b := newBootEnv(t)
	ctx := context.Background()
	both := b.image(t, "both-loaders", bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	if _, err := push.Push(ctx, b.lc, b.ec, both, push.Options{}); err != nil {
		t.Fatal(err)
	}
	if m := b.registered(t); m != "uefi-preferred" {
		t.Errorf("BootMode=%q, want uefi-preferred", m)
	}
	uefiOnly := *both // an image that says how it boots (the local cloud keeps no boot mode)
	uefiOnly.BootMode = "uefi"
	if _, err := push.Push(ctx, b.lc, b.ec, &uefiOnly, push.Options{Name: "uefi-only"}); err != nil {
		t.Fatal(err)
	}
	if m := b.registered(t); m != "uefi" {
		t.Errorf("BootMode=%q, want the image's own uefi", m)
	}
	bios := b.image(t, "bios-only", bootdisktest.Disk{Label: "dos", BootCode: true})
	if _, err := push.Push(ctx, b.lc, b.ec, bios, push.Options{}); err != nil {
		t.Fatal(err)
	}
	if m := b.registered(t); m != "legacy-bios" {
		t.Errorf("BootMode=%q, want legacy-bios", m)
	}
	if left, _ := os.ReadDir(filepath.Join(b.lc.Dir(), "tmp")); len(left) != 0 {
		t.Errorf("the pushes left %v in tmp/", left)
	}
}

// An arm64 image goes to EC2 as arm64 (moto keeps neither: the request is
// checked) with boot mode uefi, as Graviton
// boots, even when its disk has a BIOS loader too; a boot mode Graviton
// cannot boot, or a disk with only x86's UEFI loader, is refused before
// any call to AWS.
func TestPushArm64(t *testing.T) {
	b := newBootEnv(t)
	ctx := context.Background()
	hybrid := b.imageArch(t, "arm64-hybrid", "arm64", bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTAA64.EFI"}})
	if _, err := push.Push(ctx, b.lc, b.ec, hybrid, push.Options{}); err != nil {
		t.Fatal(err)
	}
	r, _ := b.rec.Last("RegisterImage")
	form, _ := url.ParseQuery(r.Form)
	if form.Get("Architecture") != "arm64" || form.Get("BootMode") != "uefi" {
		t.Errorf("RegisterImage Architecture=%q BootMode=%q, want arm64 and uefi", form.Get("Architecture"), form.Get("BootMode"))
	}
	calls := b.rec.Count("")
	legacy := *hybrid
	legacy.BootMode = "legacy-bios"
	if _, err := push.Push(ctx, b.lc, b.ec, &legacy, push.Options{Name: "arm64-legacy"}); err == nil || !strings.Contains(err.Error(), "arm64 instances boot through UEFI only") {
		t.Errorf("arm64 as legacy-bios: %v", err)
	}
	x86Loader := b.imageArch(t, "arm64-wrong-loader", "arm64", bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	if _, err := push.Push(ctx, b.lc, b.ec, x86Loader, push.Options{}); err == nil || !errors.Is(err, bootdisk.ErrNoLoader) {
		t.Errorf("arm64 with an x86 loader only: %v", err)
	}
	if n := b.rec.Count(""); n != calls {
		t.Errorf("the refused pushes made %d calls to AWS", n-calls)
	}
}

// A disk with no boot loader is refused before any call to AWS, with the
// reason and the way out, and nothing is made in EC2; --allow-no-loader
// registers it with no boot mode. A boot mode the disk cannot boot is
// refused too.
func TestPushRefusesADiskThatCannotBoot(t *testing.T) {
	b := newBootEnv(t)
	ctx := context.Background()
	none := b.image(t, "no-loader", bootdisktest.Disk{})
	calls := b.rec.Count("")
	_, err := push.Push(ctx, b.lc, b.ec, none, push.Options{})
	if err == nil || !errors.Is(err, bootdisk.ErrNoLoader) || !strings.Contains(err.Error(), "EC2's firmware would find nothing to boot") ||
		!strings.Contains(err.Error(), "--allow-no-loader") {
		t.Fatalf("a loader-less push: %v", err)
	}
	if n := b.rec.Count("") - calls; n != 0 {
		t.Errorf("the refused push made %d calls to AWS", n)
	}
	snaps, err := b.e.Client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	ims, err := b.e.Client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps.Snapshots {
		if strings.Contains(aws.ToString(s.Description), "no-loader") {
			t.Errorf("the refused push left snapshot %s", aws.ToString(s.SnapshotId))
		}
	}
	for _, im := range ims.Images {
		if aws.ToString(im.Name) == "no-loader" {
			t.Errorf("the refused push registered %s", aws.ToString(im.ImageId))
		}
	}

	if _, err := push.Push(ctx, b.lc, b.ec, none, push.Options{AllowNoLoader: true}); err != nil {
		t.Fatal(err)
	}
	if m := b.registered(t); m != "" {
		t.Errorf("--allow-no-loader sent BootMode=%q", m)
	}

	uefi := b.image(t, "uefi-disk", bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	wrong := *uefi
	wrong.BootMode = "legacy-bios"
	calls = b.rec.Count("")
	_, err = push.Push(ctx, b.lc, b.ec, &wrong, push.Options{AllowNoLoader: true})
	if err == nil || !errors.Is(err, bootdisk.ErrCannotBoot) || !strings.Contains(err.Error(), "needs a BIOS boot loader") {
		t.Errorf("legacy-bios of a UEFI-only disk: %v", err)
	}
	if n := b.rec.Count("") - calls; n != 0 {
		t.Errorf("the refused push made %d calls to AWS", n)
	}
}
