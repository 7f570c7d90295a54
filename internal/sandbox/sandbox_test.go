package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProgramJumpsStayInside(t *testing.T) {
	p := program()
	if len(p) > 4096 {
		t.Fatalf("filter too long: %d", len(p))
	}
	for i, ins := range p {
		if ins.Code&0x07 == unix.BPF_JMP && (i+1+int(ins.Jt) >= len(p) || i+1+int(ins.Jf) >= len(p)) {
			t.Errorf("instruction %d jumps past the end", i)
		}
	}
	if last := p[len(p)-1]; last.Code != unix.BPF_RET|unix.BPF_K || last.K != retAllow {
		t.Errorf("the filter does not end by allowing: %+v", last)
	}
	has := map[uint32]bool{}
	for _, nr := range denied {
		has[nr] = true
	}
	for _, nr := range []uint32{unix.SYS_MOUNT, unix.SYS_PIVOT_ROOT, unix.SYS_PTRACE, unix.SYS_BPF, unix.SYS_KEYCTL, unix.SYS_SETNS, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_INIT_MODULE} {
		if !has[nr] {
			t.Errorf("syscall %d is not denied", nr)
		}
	}
}

// hostRoot makes a small root from the host's /usr (read-only) on a tmpfs.
func hostRoot(t testing.TB) string {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	for _, d := range []string{"usr", "proc", "sys", "dev", "tmp"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		os.Symlink("usr/"+l, filepath.Join(dir, l))
	}
	if err := unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	usr := filepath.Join(dir, "usr")
	if err := unix.Mount("/usr", usr, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", usr, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(usr, unix.MNT_DETACH) })
	return dir
}

func TestSandboxedShell(t *testing.T) {
	root := hostRoot(t)
	os.Setenv("AMINATOR_SANDBOX_TEST_SECRET", "leak")
	defer os.Unsetenv("AMINATOR_SANDBOX_TEST_SECRET")
	script := `echo pid=$$; hostname; env | sort | tr '\n' ' '; echo
grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo init=$(cat /proc/1/comm)
cat /proc/kcore | wc -c | sed 's/^/kcore=/'
echo x > /proc/sys/kernel/printk_ratelimit 2>/dev/null || echo sysctl=denied
cat /sys/class/net/*/ifindex | wc -l | sed 's/^/ifaces=/'
unshare --user --map-root-user true 2>/dev/null || echo userns=denied
mount -t tmpfs none /tmp 2>/dev/null || echo mount=denied
mknod /tmp/sda b 8 0 2>/dev/null || echo mknod=denied`
	cmd, err := Command(Spec{Root: root, Path: "/bin/sh", Argv: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin", "ONLY=this"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"pid=1\n", "localhost\n", "ONLY=this PATH=/usr/bin:/bin PWD=/ \n", fmt.Sprintf("CapBnd:\t%016x", keepMask()),
		"NoNewPrivs:\t1", "Seccomp:\t2", "init=sh\n", "kcore=0\n", "sysctl=denied", "ifaces=1\n",
		"userns=denied", "mount=denied", "mknod=denied"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
}

func keepMask() uint64 {
	var m uint64
	for _, c := range Keep {
		m |= 1 << c
	}
	return m
}
