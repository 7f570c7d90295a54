package treediff

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree builds a directory from a spec: path -> content ("dir/" makes a
// directory, "->target" a symlink).
func tree(t *testing.T, spec map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range spec {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(c, "->"):
			err = os.Symlink(c[2:], full)
		default:
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func lines(ds []Diff) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func compare(t *testing.T, a, b string, o Options) []string {
	t.Helper()
	ds, err := Compare(context.Background(), a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return lines(ds)
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var base = map[string]string{
	"etc/hosts": "127.0.0.1 localhost\n", "etc/motd": "hi\n", "etc/empty": "",
	"usr/bin/tool": "#!/bin/sh\n", "usr/lib/": "", "var/log/": "", "var/log/a.log": "x",
	"lib": "->usr/lib", "loop1": "->loop2", "loop2": "->loop1", "escape": "->/etc/shadow", "up": "->../../..",
}

func clone(m map[string]string) map[string]string {
	c := map[string]string{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Identical trees, symlink loops and links out of the tree included,
// differ in nothing; times, inodes and hard links do not count.
func TestIdentical(t *testing.T) {
	a, b := tree(t, base), tree(t, base)
	if err := os.Chtimes(filepath.Join(b, "etc/hosts"), time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(b, "etc/motd"))
	if err := os.Link(filepath.Join(b, "usr/bin/tool"), filepath.Join(b, "usr/bin/tool2")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, "usr/bin/tool2"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "etc/motd"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, compare(t, a, b, Options{}))
}

// Every kind of difference, in walk order.
func TestDifferences(t *testing.T) {
	sb := clone(base)
	sb["etc/hosts"] = "127.0.0.2 localhost\n" // same size, other bytes
	sb["etc/motd"] = "hello\n"                // other size
	delete(sb, "var/log/a.log")
	sb["opt/new/file"] = "n"
	sb["lib"] = "->usr/lib64"
	delete(sb, "etc/empty")
	sb["etc/empty/"] = "" // a file became a directory
	sb["etc/empty/inside"] = "i"
	a, b := tree(t, base), tree(t, sb)
	must(t, os.Chmod(filepath.Join(b, "usr/bin/tool"), 0o4755))
	must(t, os.Lchown(filepath.Join(b, "usr/lib"), 1, 2))
	check(t, compare(t, a, b, Options{}),
		"M /etc/empty (type)", "+ /etc/empty/inside",
		"M /etc/hosts (content)", "M /etc/motd (content)",
		"M /lib (link)",
		"+ /opt", "+ /opt/new", "+ /opt/new/file",
		"M /usr/bin/tool (mode)", "M /usr/lib (owner)",
		"- /var/log/a.log")
	check(t, compare(t, b, a, Options{Ignore: []string{"/opt", "/etc/*", "/var/log/*.log"}}),
		"M /lib (link)", "M /usr/bin/tool (mode)", "M /usr/lib (owner)")
}

// A symlink is compared by its target and never followed: a directory
// that becomes a link to a directory outside the tree shows as a type
// change, its children as removed, and nothing of what it points at.
func TestSymlinksNotFollowed(t *testing.T) {
	sa := map[string]string{"d/": "", "d/f": "f", "link": "->/etc"}
	sb := map[string]string{"d": "->/etc", "link": "->/etc"}
	a, b := tree(t, sa), tree(t, sb)
	check(t, compare(t, a, b, Options{}), "M /d (type)", "- /d/f")
}

// Special files: fifos compare by type, mode and owner (never opened),
// devices by their number too.
func TestSpecialFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		must(t, unix.Mkfifo(filepath.Join(d, "fifo"), 0o600))
		must(t, unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(filepath.Join(d, "sock"), unix.S_IFSOCK|0o600, 0))
	}
	must(t, unix.Mknod(filepath.Join(a, "dev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))))
	must(t, unix.Mknod(filepath.Join(b, "dev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 7))))
	check(t, compare(t, a, b, Options{}), "M /dev (content)")
	must(t, os.Remove(filepath.Join(b, "fifo")))
	must(t, os.WriteFile(filepath.Join(b, "fifo"), nil, 0o600))
	check(t, compare(t, a, b, Options{}), "M /dev (content)", "M /fifo (type)")
}

// Extended attributes are compared by name and value, on files,
// directories and the root itself.
func TestXattrs(t *testing.T) {
	a, b := tree(t, base), tree(t, base)
	set := func(p, n, v string) {
		t.Helper()
		if err := unix.Lsetxattr(p, n, []byte(v), 0); err != nil {
			t.Skipf("no user xattrs here: %v", err)
		}
	}
	set(filepath.Join(a, "etc/hosts"), "user.a", "1")
	set(filepath.Join(b, "etc/hosts"), "user.a", "1")
	check(t, compare(t, a, b, Options{}))
	set(filepath.Join(b, "etc/hosts"), "user.a", "2")
	set(filepath.Join(a, "usr"), "user.dir", "x")
	set(b, "user.root", "r")
	check(t, compare(t, a, b, Options{}), "M / (xattrs)", "M /etc/hosts (xattrs)", "M /usr (xattrs)")

	// SELinux labels and ACLs are extended attributes too.
	set(filepath.Join(a, "usr/bin/tool"), "security.selinux", "system_u:object_r:bin_t:s0\x00")
	set(filepath.Join(b, "usr/bin/tool"), "security.selinux", "system_u:object_r:etc_t:s0\x00")
	// user::rw- group::r-- mask::r-- other::r--: the file's mode (0644), with a mask.
	acl := "\x02\x00\x00\x00" + "\x01\x00\x06\x00\xff\xff\xff\xff" + "\x04\x00\x04\x00\xff\xff\xff\xff" +
		"\x10\x00\x04\x00\xff\xff\xff\xff" + "\x20\x00\x04\x00\xff\xff\xff\xff"
	set(filepath.Join(b, "etc/motd"), "system.posix_acl_access", acl)
	check(t, compare(t, a, b, Options{Ignore: []string{"/etc/hosts", "/usr"}}), "M / (xattrs)", "M /etc/motd (xattrs)")
	check(t, compare(t, a, b, Options{Ignore: []string{"/"}})) // everything
	check(t, compare(t, a, b, Options{Ignore: []string{"/etc/hosts"}}),
		"M / (xattrs)", "M /etc/motd (xattrs)", "M /usr (xattrs)", "M /usr/bin/tool (xattrs)")
}

// A bad glob is refused; a cancelled comparison stops.
func TestErrors(t *testing.T) {
	a := tree(t, base)
	if _, err := Compare(context.Background(), a, a, Options{Ignore: []string{"["}}); err == nil {
		t.Error("a bad glob was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Compare(ctx, a, a, Options{}); err == nil {
		t.Error("a cancelled comparison succeeded")
	}
	if _, err := Compare(context.Background(), a, filepath.Join(a, "missing"), Options{}); err == nil {
		t.Error("a missing tree compared")
	}
}

// Many files of equal size are hashed in parallel and each pair is
// marked on its own.
func TestManyFiles(t *testing.T) {
	sa, sb := map[string]string{}, map[string]string{}
	var want []string
	for i := range 200 {
		p := filepath.Join("d", string(rune('a'+i/26))+string(rune('a'+i%26)))
		sa[p], sb[p] = strings.Repeat("x", i), strings.Repeat("x", i)
		if i%37 == 5 {
			sb[p] = strings.Repeat("y", i)
			want = append(want, "M /"+p+" (content)")
		}
	}
	check(t, compare(t, tree(t, sa), tree(t, sb), Options{Workers: 8}), want...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
