package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// boot is the boot test itself (boottest.Run; unit tests replace it).
var boot = boottest.Run

// BootTest boots im from store under qemu (the stored image is not
// modified) as a "boot test" stage, and records the outcome on the image
// in the tags boot_test (passed or failed) and boot_test_time, even when
// ctx was cancelled meanwhile. A boot that fails returns a
// *boottest.Error naming the image; an error that kept the test from
// running leaves the image's tags alone.
func BootTest(ctx context.Context, c plugin.Tagger, store boottest.Disks, im *plugin.Image, o boottest.Options, log *slog.Logger) (*boottest.Result, error) {
	var res *boottest.Result
	_, err := undo.Step(ctx, log, "boot test", func(ctx context.Context) (err error) {
		res, err = boot(ctx, store, im, o, log)
		return err
	})
	var be *boottest.Error
	if err != nil && !errors.As(err, &be) {
		return res, fmt.Errorf("boot test of %s: %w", im.ID, err)
	}
	state := "passed"
	if be != nil {
		state = "failed"
	}
	if terr := c.CreateTags(context.WithoutCancel(ctx), im.ID, plugin.Tags{"boot_test": state, "boot_test_time": naming.CreationTime(time.Now())}); terr != nil {
		return res, errors.Join(err, terr)
	}
	if be != nil {
		return res, fmt.Errorf("image %s: %w", im.ID, err)
	}
	if res.Like == boottest.LikeEC2 {
		log.Info("boot test passed: launched like EC2 and logged in over ssh", "image", im.ID, "boot_mode", res.BootMode, "accel", res.Accel,
			"took", res.Duration.Round(time.Millisecond), "ssh", res.SSH, "console", res.ConsoleLog)
		return res, nil
	}
	log.Info("boot test passed", "image", im.ID, "accel", res.Accel, "took", res.Duration.Round(time.Millisecond), "console", res.ConsoleLog)
	return res, nil
}
