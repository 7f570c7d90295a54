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

// A device stacked on another (a partition's device on a volume's, as a
// bake of a partitioned image makes) leaves what it wrote in the lower
// device's page cache; its detach writes that back too, so the backing
// file has it while the lower device is still attached (the local
// cloud snapshots the file before it detaches the volume).
func TestDetachWritesBackThroughAStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device")
	}
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lower, err := Attach(ctx, file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lower.Detach()
	upper, err := Attach(ctx, lower.Path, Options{Offset: 1 << 20, SizeLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer upper.Detach()
	w, err := os.OpenFile(upper.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("written through the stack "), 1000)
	if _, err := w.WriteAt(want, 1<<20); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := upper.Detach(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[2<<20:2<<20+len(want)], want) {
		t.Error("the upper device's writes are not in the file after its detach")
	}
}
