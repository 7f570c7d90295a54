package partition

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func mk(t *testing.T, script string) string {
	t.Helper()
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("no sfdisk")
	}
	img := filepath.Join(t.TempDir(), "disk")
	f, _ := os.Create(img)
	f.Truncate(64 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "--quiet", img)
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, b)
	}
	return img
}

func TestGPT(t *testing.T) {
	img := mk(t, "label: gpt\nstart=2048, size=16MiB\nstart=40960, size=8MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
	p, err := Find(img, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 40960*512 || p.Size != 8<<20 || p.Type != "0FC63DAF-8483-4772-8E79-3D69D8477DE4" {
		t.Errorf("partition 2: %+v", p)
	}
	if _, err := Find(img, 3); err == nil || !strings.Contains(err.Error(), "has: [1 2]") {
		t.Errorf("missing partition: %v", err)
	}
}

func TestMBR(t *testing.T) {
	img := mk(t, "label: dos\nstart=2048, size=16MiB, type=83\n")
	p, err := Find(img, 1)
	if err != nil || p.Start != 1<<20 || p.Size != 16<<20 || p.Type != "83" {
		t.Errorf("partition 1: %+v %v", p, err)
	}
}

func TestNoTable(t *testing.T) {
	img := filepath.Join(t.TempDir(), "raw")
	os.WriteFile(img, make([]byte, 4096), 0o644)
	if _, err := Read(img); err == nil || !strings.Contains(err.Error(), "no partition table") {
		t.Errorf("raw: %v", err)
	}
}
