package attest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/image/sbom"
)

// failAt makes the Put or Delete stage named point fail, for one test.
func failAt(t *testing.T, point string) {
	t.Cleanup(func() { stage = func(string) error { return nil } })
	stage = func(s string) error {
		if s == point {
			return errors.New("injected failure at " + point)
		}
		return nil
	}
}

// generation is which Put's documents the image has ("" for none), each
// document checked: a mix of two Puts fails the test.
func generation(t *testing.T, s *Store, id string) string {
	t.Helper()
	ds, err := s.Docs(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	gen := ""
	for _, d := range ds {
		_, g, _ := strings.Cut(string(d.Body), `"gen":"`)
		g, _, _ = strings.Cut(g, `"`)
		if gen != "" && g != gen {
			t.Fatalf("image %s mixes documents of Puts %s and %s", id, gen, g)
		}
		gen = g
	}
	if len(ds) != 3 {
		t.Fatalf("image %s has %d documents, want 3", id, len(ds))
	}
	q, _ := ParseQuery("openssl")
	m, err := s.Has(context.Background(), q)
	if err != nil || len(m) != 1 || m[0].Version != "3.0."+gen {
		t.Fatalf("image %s has documents of Put %s but packages %v (%v)", id, gen, m, err)
	}
	return gen
}

func put(t *testing.T, s *Store, id, gen string) error {
	return s.Put(context.Background(), id, inventory(sbom.KindDeb, "openssl 3.0."+gen), docs(gen)...)
}

// A Put failing at any stage leaves the image's old documents, or none
// for a new image, and no temporary directory.
func TestFailedPutLeavesTheOldDocuments(t *testing.T) {
	for _, point := range []string{"written", "indexed", "swapped"} {
		t.Run(point, func(t *testing.T) {
			s := newStore(t)
			if err := put(t, s, "ami-old", "1"); err != nil {
				t.Fatal(err)
			}
			failAt(t, point)
			if err := put(t, s, "ami-old", "2"); err == nil {
				t.Fatal("no error")
			}
			if err := put(t, s, "ami-new", "2"); err == nil {
				t.Fatal("no error")
			}
			if g := generation(t, s, "ami-old"); g != "1" {
				t.Errorf("after a failed Put: documents of Put %q, want 1", g)
			}
			if g := generation(t, s, "ami-new"); g != "" {
				t.Errorf("a new image after a failed Put: documents of Put %q, want none", g)
			}
			if _, err := os.Stat(filepath.Join(s.Dir(), "ami-new")); !os.IsNotExist(err) {
				t.Errorf("a new image's directory after a failed Put: %v", err)
			}
			if l := leftovers(t, s.Dir()); l != nil {
				t.Errorf("leftovers: %v", l)
			}
		})
	}
}

func TestFailedDeleteKeepsTheDocuments(t *testing.T) {
	s := newStore(t)
	if err := put(t, s, "ami-1", "1"); err != nil {
		t.Fatal(err)
	}
	failAt(t, "deleting")
	if err := s.Delete(context.Background(), "ami-1"); err == nil {
		t.Fatal("no error")
	}
	if g := generation(t, s, "ami-1"); g != "1" {
		t.Errorf("after a failed Delete: %q", g)
	}
}

// crashEnv names the stage a child test process SIGKILLs itself at.
const crashEnv = "ATTEST_TEST_CRASH_AT"

// TestCrashChild is the child of TestCrash: it Puts (or Deletes) ami-1
// in the store ATTEST_TEST_DIR and is killed at the named stage.
func TestCrashChild(t *testing.T) {
	point := os.Getenv(crashEnv)
	if point == "" {
		t.Skip("the child of TestCrash")
	}
	s := open(t, os.Getenv("ATTEST_TEST_DIR"))
	stage = func(p string) error {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		return nil
	}
	if strings.HasPrefix(point, "delet") {
		s.Delete(context.Background(), "ami-1")
	} else {
		put(t, s, "ami-1", "2")
		put(t, s, "ami-2", "2")
	}
	t.Fatal("not killed")
}

// A Put or Delete killed at any stage leaves, once the store is opened
// again, the old documents or the new ones, never a mix, and none of its
// temporary directories.
func TestCrash(t *testing.T) {
	cases := map[string]string{"written": "1", "indexed": "1", "swapped": "1", "committed": "2", "deleting": "1", "deleted": ""}
	for point, want := range cases {
		t.Run(point, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "attest")
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := put(t, s, "ami-1", "1"); err != nil {
				t.Fatal(err)
			}
			s.Close()
			cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashChild$")
			cmd.Env = append(os.Environ(), crashEnv+"="+point, "ATTEST_TEST_DIR="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed: %v\n%s", err, out)
			}
			s = open(t, dir)
			if g := generation(t, s, "ami-1"); g != want {
				t.Errorf("after a crash at %s: documents of Put %q, want %q", point, g, want)
			}
			if g := generation(t, s, "ami-2"); g != "" {
				t.Errorf("after a crash at %s: the new image has documents of Put %q", point, g)
			}
			if l := leftovers(t, dir); l != nil {
				t.Errorf("leftovers after Open: %v", l)
			}
		})
	}
}

// Open removes a leftover temporary directory and an image directory the
// index does not know, and puts back a directory moved aside whose
// replacement never committed.
func TestOpenCleansLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "attest")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "ami-1", "1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, d := range []string{".tmp-ami-1-0123456789ab", "ami-unknown"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
		os.WriteFile(filepath.Join(dir, d, "spdx.json"), []byte("{}"), 0o600)
	}
	// A crash between moving ami-1 aside and putting the new one in.
	if err := os.Rename(filepath.Join(dir, "ami-1"), filepath.Join(dir, ".old-ami-1-0123456789ab")); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if g := generation(t, s, "ami-1"); g != "1" {
		t.Errorf("ami-1 after Open: %q", g)
	}
	for _, d := range []string{".tmp-ami-1-0123456789ab", "ami-unknown", ".old-ami-1-0123456789ab"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s after Open: %v", d, err)
		}
	}
}
