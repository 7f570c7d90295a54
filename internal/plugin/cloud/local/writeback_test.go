package local

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

// While a volume is attached its file is written back as it is written
// (its filesystem is mounted without flushes: the volumes are scratch),
// so the snapshot does not find it all dirty: data written into it is
// soon on disk (filefrag shows no delayed allocation left), long before
// the kernel's own 30 s. Detaching stops it.
func TestAttachedVolumeWrittenBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device")
	}
	filefrag, err := exec.LookPath("filefrag")
	if err != nil {
		t.Skip("no filefrag")
	}
	c := open(t)
	if !c.ScratchVolumes() {
		t.Fatal("the local cloud's volumes are not scratch")
	}
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachVolume(ctx, v.ID, ""); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(c.VolumePath(v.ID), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(strings.Repeat("x", 1<<20)), 4<<20)
	f.Close()
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out, err = exec.Command(filefrag, "-v", c.VolumePath(v.ID)).CombinedOutput(); err == nil && !strings.Contains(string(out), "delalloc") {
			break
		}
	}
	if err != nil || strings.Contains(string(out), "delalloc") {
		t.Errorf("still dirty while attached: %v\n%s", err, out)
	}
	if err := c.DetachVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(c.writeback); n != 0 {
		t.Errorf("%d write-backs left running after the detach", n)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
}
