package netns

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run the test as root")
	}
}

func newNS(t *testing.T) *NS {
	t.Helper()
	needRoot(t)
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// greet listens on addr inside n and writes msg and a newline to each
// connection.
func greet(t *testing.T, n *NS, addr, msg string) net.Listener {
	t.Helper()
	l, err := n.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, msg)
			c.Close()
		}
	}()
	return l
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", c.RemoteAddr(), err)
	}
	return strings.TrimSpace(line)
}

func TestServiceAddressesAnswerInside(t *testing.T) {
	n := newNS(t)
	for _, addr := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "169.254.169.123:80"} {
		greet(t, n, addr, "hello from "+addr)
		c, err := n.Dial(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := readLine(t, c); got != "hello from "+addr {
			t.Errorf("%s answered %q", addr, got)
		}
	}
}

func TestTimeSyncUDP(t *testing.T) {
	n := newNS(t)
	pc, err := n.ListenPacket("udp", "169.254.169.123:123")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := n.Dial(context.Background(), "udp", "169.254.169.123:123")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("tick")); err != nil {
		t.Fatal(err)
	}
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	k, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "tick" {
		t.Fatalf("the time address got %q, %v", buf[:k], err)
	}
}

func TestCommandRunsInside(t *testing.T) {
	n := newNS(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter (util-linux) is not installed")
	}
	greet(t, n, "169.254.169.254:80", "metadata")
	cmd := n.Command(context.Background(), "bash", "-c", "exec 3<>/dev/tcp/169.254.169.254/80 && head -n1 <&3")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "metadata" {
		t.Fatalf("command inside: %q, %v", out, err)
	}
}

func TestHostDoesNotSeeTheNamespace(t *testing.T) {
	n := newNS(t)
	greet(t, n, "169.254.169.254:80", "metadata")
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), "169.254.169.254/") {
			t.Fatalf("the host's namespace carries %s", a)
		}
	}
}

func TestHostLoopbackUnreachableInside(t *testing.T) {
	n := newNS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0") // on the host
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := n.Dial(context.Background(), "tcp", l.Addr().String())
	if err == nil {
		c.Close()
		t.Fatalf("the host's %s is reachable from inside", l.Addr())
	}
}

func TestOnlyLoopbackAndNoRoute(t *testing.T) {
	n := newNS(t)
	err := n.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagUp == 0 {
			return fmt.Errorf("interfaces inside: %v", ifs)
		}
		routes, err := os.ReadFile("/proc/thread-self/net/route")
		if err != nil {
			return err
		}
		if lines := strings.Split(strings.TrimSpace(string(routes)), "\n"); len(lines) != 1 {
			return fmt.Errorf("main routing table inside is not empty:\n%s", routes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	needRoot(t)
	mountsBefore := readFile(t, "/proc/mounts")
	runBefore := listDir(t, "/run/netns")
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	inode := nsInode(t, n)
	if err := n.Do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, "/proc/mounts"); got != mountsBefore {
		t.Errorf("/proc/mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, got)
	}
	if got := listDir(t, "/run/netns"); got != runBefore {
		t.Errorf("/run/netns changed: %q, was %q", got, runBefore)
	}
	waitNoThreadIn(t, inode)
	if err := n.Do(func() error { return nil }); err == nil {
		t.Error("Do on a closed namespace succeeded")
	}
	if err := n.Command(context.Background(), "true").Run(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a command of a closed namespace: %v", err)
	}
}

func TestDoReraisesPanic(t *testing.T) {
	n := newNS(t)
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v, want boom", v)
		}
	}()
	n.Do(func() error { panic("boom") })
}

func TestNamesAreRefused(t *testing.T) {
	if err := checkLiteral("localhost:80", false); err == nil {
		t.Error("a name was accepted")
	}
	if err := checkLiteral(":80", false); err == nil {
		t.Error("an empty host was accepted for a dial")
	}
	if err := checkLiteral(":80", true); err != nil {
		t.Errorf("an empty host was refused for a listener: %v", err)
	}
	if err := checkLiteral("[fd00:ec2::254]:80", false); err != nil {
		t.Error(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}

func nsInode(t *testing.T, n *NS) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(n.fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// waitNoThreadIn waits until no thread of this process is in the namespace
// with the given inode (Do's threads end shortly after Do returns).
func waitNoThreadIn(t *testing.T, inode uint64) {
	t.Helper()
	want := fmt.Sprintf("net:[%d]", inode)
	var inside []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		inside = inside[:0]
		links, _ := filepath.Glob("/proc/self/task/*/ns/net")
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && target == want {
				inside = append(inside, l)
			}
		}
		if len(inside) == 0 {
			return
		}
	}
	t.Errorf("threads still in the namespace: %v", inside)
}
