package service

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
)

func TestExportFormat(t *testing.T) {
	for _, c := range []struct {
		format, file, want string
		ok                 bool
	}{
		{"", "a.qcow2", "qcow2", true}, {"", "a.img", "raw", true}, {"", "a.bin", "raw", true}, {"", "a", "raw", true},
		{"vmdk", "a.qcow2", "vmdk", true}, {"vhdx", "a", "vhdx", true}, {"raw", "a.vmdk", "raw", true},
		{"img", "a", "img", false}, {"vdi", "a.raw", "vdi", false},
	} {
		got, ok := ExportFormat(c.format, c.file)
		if got != c.want || ok != c.ok {
			t.Errorf("ExportFormat(%q, %q) = %q, %v; want %q, %v", c.format, c.file, got, ok, c.want, c.ok)
		}
	}
}

// restorer writes each snapshot's id as its data.
type restorer struct{}

func (restorer) Restore(_ context.Context, id, dst string) error {
	return os.WriteFile(dst, []byte(id), 0o600)
}

func TestExportRaw(t *testing.T) {
	out := filepath.Join(t.TempDir(), "disk.img")
	log := slog.New(slog.DiscardHandler)
	if err := Export(context.Background(), restorer{}, &plugin.Image{ID: "ami-1", RootDeviceName: "/dev/xvda", BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/xvda", SnapshotID: "snap-00000000000000001"}}}, "raw", out, log); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "snap-00000000000000001" {
		t.Errorf("exported %q, want the root snapshot", b)
	}
	if err := Export(context.Background(), restorer{}, &plugin.Image{ID: "ami-2"}, "raw", out, log); err == nil {
		t.Error("exported an image without a root snapshot")
	}
}
