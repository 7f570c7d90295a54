package bake

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
)

// firmwareCloud is the fake cloud booting through firmware, as EC2 does.
type firmwareCloud struct{ *fakecloud.Cloud }

func (firmwareCloud) BootsThroughFirmware() bool { return true }

// diskVolumes attaches every volume as a real disk image, which the boot
// loader detection reads.
type diskVolumes struct {
	*fakecloud.Volumes
	disk string
}

func (v diskVolumes) Attach(ctx context.Context, vol *plugin.Volume, device string) (string, error) {
	if _, err := v.Volumes.Attach(ctx, vol, device); err != nil {
		return "", err
	}
	return v.disk, nil
}

// The boot mode registered is the disk's, never a tag's: on a cloud that
// boots through firmware a disk that cannot boot in the mode asked for (or
// at all) is refused with the reason and the bake undone; elsewhere a
// loader-less disk is registered with no boot mode. Every image carries
// the loaders found in its boot tag.
func TestBootModeFromTheDisk(t *testing.T) {
	dir := t.TempDir()
	both, _ := bootdisktest.Make(t, dir, bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	uefi, _ := bootdisktest.Make(t, dir, bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	none, _ := bootdisktest.Make(t, dir, bootdisktest.Disk{})
	for _, tc := range []struct {
		what      string
		firmware  bool
		disk      string
		req, base string // boot modes asked for and the base's
		mode, tag string
		refused   string
	}{
		{"both loaders on EC2", true, both, "", "", "uefi-preferred", "bios+uefi", ""},
		{"UEFI only on EC2", true, uefi, "", "", "uefi", "uefi", ""},
		{"the base's mode, which the disk boots", true, both, "", "uefi", "uefi", "bios+uefi", ""},
		{"the request's mode over the base's", true, both, "legacy-bios", "uefi", "legacy-bios", "bios+uefi", ""},
		{"no loader on EC2", true, none, "", "", "", "", "the disk has no boot loader: EC2's firmware would find nothing to boot"},
		{"legacy-bios asked of a UEFI-only disk", true, uefi, "legacy-bios", "", "", "", "boot mode legacy-bios needs a BIOS boot loader"},
		{"the base's uefi on a disk that lost it", true, none, "", "uefi", "", "", "the disk has no boot loader"},
		{"no loader on the local cloud", false, none, "", "", "", "none", ""},
		{"the base's mode on the local cloud, with no loader", false, none, "", "uefi", "", "none", ""},
		{"uefi asked of a loader-less disk on the local cloud", false, none, "uefi", "", "", "", "the disk has no boot loader"},
		{"both loaders on the local cloud", false, both, "", "", "uefi-preferred", "bios+uefi", ""},
	} {
		f := newFakes(t)
		f.env.Volume = diskVolumes{f.cloud.VolumePlugin(), tc.disk}
		if tc.firmware {
			f.env.Cloud = firmwareCloud{f.cloud}
		}
		req := Request{Package: "hello", BaseID: baseID, Suffix: "s", Creator: "me", BakeID: "bake-1", BootMode: tc.req}
		if tc.base != "" { // a base registered with a boot mode, on the first's snapshot
			im, err := f.cloud.RegisterImage(context.Background(), plugin.ImageRequest{Name: "booting-base", Architecture: "x86_64",
				RootDeviceName: "/dev/sda1", BootMode: tc.base, BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: baseSnap}}})
			if err != nil {
				t.Fatal(err)
			}
			req.BaseID = im.ID
		}
		res, err := Run(context.Background(), f.env, req, slog.New(slog.DiscardHandler))
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) || !errors.Is(err, bootdisk.ErrCannotBoot) {
				t.Errorf("%s: %v, want a refusal saying %q", tc.what, err, tc.refused)
			}
			if vols, snaps, ims := f.cloud.Volumes(), f.cloud.Snapshots(), len(f.cloud.Images()); len(vols) != 0 || len(snaps) != 1 || ims != 1+min(len(tc.base), 1) {
				t.Errorf("%s: the refused bake left %d volumes, %d snapshots, %d images", tc.what, len(vols), len(snaps), ims)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if im := res.Image; im.BootMode != tc.mode || im.Tags["boot"] != tc.tag {
			t.Errorf("%s: boot mode %q, boot tag %q; want %q, %q", tc.what, im.BootMode, im.Tags["boot"], tc.mode, tc.tag)
		}
	}
}
