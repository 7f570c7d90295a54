package bake

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
)

// An arm64 bake on a cloud that boots through firmware (EC2) registers an
// arm64 image with boot mode uefi, as Graviton boots, even from a disk
// with a BIOS loader too; a disk with only x86's UEFI loader is refused.
func TestArm64BootMode(t *testing.T) {
	bootdisktest.Need(t)
	dir := t.TempDir()
	hybrid, _ := bootdisktest.Make(t, dir, bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTAA64.EFI"}})
	x86, _ := bootdisktest.Make(t, dir, bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	for _, tc := range []struct {
		disk string
		ok   bool
	}{{hybrid, true}, {x86, false}} {
		f := newFakes(t)
		f.env.Volume = diskVolumes{f.cloud.VolumePlugin(), tc.disk}
		f.env.Cloud = firmwareCloud{f.cloud}
		f.env.Binfmt.Dir = binfmtStandIn(t, map[string]string{"qemu": strings.ReplaceAll(debianHandler("arm64"), "flags: OC", "flags: POCF")})
		base, err := f.cloud.RegisterImage(context.Background(), plugin.ImageRequest{Name: "arm64-base", Architecture: "arm64",
			RootDeviceName: "/dev/sda1", BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: baseSnap}}})
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Package: "hello", BaseID: base.ID, Suffix: "s", Creator: "me", BakeID: "bake-1"}
		res, err := Run(context.Background(), f.env, req, slog.New(slog.DiscardHandler))
		if !tc.ok {
			if !errors.Is(err, bootdisk.ErrNoLoader) {
				t.Errorf("an arm64 disk with x86's loader only: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if im := res.Image; im.Architecture != "arm64" || im.BootMode != "uefi" {
			t.Errorf("registered %s with boot mode %q; want arm64, uefi", im.Architecture, im.BootMode)
		}
	}
}
