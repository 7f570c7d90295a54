package loop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// What a tool wrote through the device's page cache without syncing it
// (mtools) is in the backing file once the device is detached.
func TestDetachWritesBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device")
	}
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Attach(context.Background(), file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Detach()
	w, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("written through the device "), 1000)
	if _, err := w.WriteAt(want, 1<<20); err != nil {
		t.Fatal(err)
	}
	w.Close() // no fsync, as mtools does
	if err := d.Detach(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1<<20:1<<20+len(want)], want) {
		t.Error("the device's writes are not in the file after the detach")
	}
}
