package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// AttestImport attests an imported image on request: its packages read
// from its root filesystem (mounted read-only, nothing of it run), its
// disk digest from the store, SBOMs and a provenance of build type
// import v1 that names the file it came from, signed and kept as a bake's
// are. A lineage walk ends at it, as at a foundation.
func AttestImport(ctx context.Context, cfg *config.Config, cloudName string, c plugin.Cloud, im *plugin.Image, source string, log *slog.Logger) error {
	start := time.Now()
	disks, err := plugin.Has[plugin.DiskFiles](c, cloudName, "disk files")
	if err != nil {
		return err
	}
	digests, err := plugin.Has[plugin.DiskDigests](c, cloudName, "disk digests")
	if err != nil {
		return err
	}
	inv, err := importInventory(ctx, disks, im)
	if err != nil {
		return err
	}
	snap, err := RootSnapshot(im)
	if err != nil {
		return err
	}
	digest, err := digests.DiskDigest(ctx, snap)
	if err != nil {
		return fmt.Errorf("disk digest of image %s: %w", im.ID, err)
	}
	a, st, err := NewAttester(ctx, cfg, cloudName, c, Version, log)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = a.Attest(ctx, bake.Attestation{
		ImageID: im.ID, DiskDigest: digest, Inventory: inv, Import: true,
		BakeID: "import-" + im.ID, Started: start, Finished: time.Now(),
		Configuration: map[string]any{"import": filepath.Base(source), "name": im.Name, "arch": im.Architecture,
			"vm_type": im.VirtualizationType, "role": im.Tags["role"]},
	})
	return err
}

// importInventory reads the packages of im's root filesystem.
func importInventory(ctx context.Context, disks plugin.DiskFiles, im *plugin.Image) (*sbom.Inventory, error) {
	tmp, release, err := disks.Scratch(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	work, err := os.MkdirTemp(tmp, "import-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(work) // not RemoveAll: see DiffFiles
	var inv *sbom.Inventory
	err = withImageRoot(ctx, disks, im, filepath.Join(work, "i"), func(root string) error {
		inv, err = sbom.Read(root, sbom.Options{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the packages of image %s: %w", im.ID, err)
	}
	return inv, nil
}
