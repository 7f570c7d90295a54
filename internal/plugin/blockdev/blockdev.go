// Package blockdev holds the blockdevice plugins, which reserve attachment
// points and find the local device node of an attached volume.
//
// "loop" serves the local cloud: the kernel picks loop numbers (the local
// cloud serialises that under a flock), and the attachment already names
// the node. A cloud whose volumes appear as /dev/sdX or NVMe namespaces
// gets its own plugin here.
package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindBlockDevice, Name: "loop",
		Description: "loop devices chosen by the kernel (local cloud)",
		New:         func(_ any, d plugin.Deps) (any, error) { return Loop{}, nil },
	})
}

// Loop is the local cloud's blockdevice plugin.
type Loop struct{}

// Allocate reserves nothing: the kernel picks a free loop device at
// attach time, so a named device cannot be asked for.
func (Loop) Allocate(ctx context.Context, name string) (plugin.Slot, error) {
	if name != "" {
		return plugin.Slot{}, fmt.Errorf("--block-device %s: the local cloud's loop devices are picked by the kernel", name)
	}
	return plugin.Slot{Release: func() error { return nil }}, nil
}

// Locate waits for the node the cloud reported.
func (Loop) Locate(ctx context.Context, a plugin.Attachment) (string, error) {
	if a.LocalPath == "" {
		return "", errors.New("locate: the cloud did not report a local device for " + a.VolumeID)
	}
	return a.LocalPath, WaitNode(ctx, a.LocalPath, 10*time.Second)
}

// WaitNode waits until path exists and is a block device.
func WaitNode(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := os.Stat(path)
		if err == nil {
			if st.Mode()&os.ModeDevice == 0 {
				return fmt.Errorf("%s is not a block device", path)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("device %s did not appear within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
