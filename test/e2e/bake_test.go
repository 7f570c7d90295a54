package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fetchtest"
)

func hashFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing: " + err.Error()
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// The plain bake: a local .deb with files and an image script; the image is
// registered with the original's name format and tags, and the package and
// the script's output are inside it. The host's policy-rc.d and
// resolv.conf are never touched.
func TestBakeLocalDeb(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	hostPolicy, hostResolv := hashFile(t, "/usr/sbin/policy-rc.d"), hashFile(t, "/etc/resolv.conf")
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-plain", Version: "1:2.5-3",
		Files: map[string]string{
			"/opt/plain/hello.txt":     "hello from the package\n",
			"/var/local/10-record.sh":  "#!/bin/sh\nenv | grep ^AMINATOR_ | sort > /opt/plain/script-env\n",
			"/var/local/20-second.sh":  "#!/bin/sh\necho second >> /opt/plain/order\n",
			"/var/local/05-first.sh":   "#!/bin/sh\necho first >> /opt/plain/order\n",
			"/var/local/99-notexec.sh": "#!/bin/sh\necho ran >> /opt/plain/order\n",
		},
		Exec: []string{"/var/local/10-record.sh", "/var/local/20-second.sh", "/var/local/05-first.sh"},
	})
	r := aminate(t, "-B", b, "-s", "t1", "--tag", "team=core", "-c", "tester", deb)
	id := mustOK(t, r)
	if !regexp.MustCompile(`^ami-[0-9a-f]{17}$`).MatchString(id) {
		t.Fatalf("stdout is not an image id: %q", id)
	}
	if !strings.Contains(r.Stderr, "log=") {
		t.Errorf("the bake log path is not printed:\n%s", r.Stderr)
	}
	im := showImage(t, id)
	if want := "aminator-plain-2.5-3-x86_64-t1-ebs"; im.Name != want {
		t.Errorf("name %q, want %q", im.Name, want)
	}
	want := map[string]string{
		"creator": "tester", "appversion": "aminator-plain-2.5-3", "base_ami_id": b, "base_ami_name": baseName,
		"base_ami_version": "bookworm-1", "team": "core", "boot": "none", // a whole-disk filesystem, booted by its kernel here
	}
	for k, v := range want {
		if im.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, im.Tags[k], v)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`).MatchString(im.Tags["creation_time"]) {
		t.Errorf("creation_time %q", im.Tags["creation_time"])
	}
	if !strings.HasPrefix(im.Description, "name=aminator-plain-1:2.5-3, arch=x86_64, ancestor_name="+baseName+", ancestor_id="+b) {
		t.Errorf("description %q", im.Description)
	}
	if im.RootDeviceName != "/dev/sda1" || im.VirtualizationType != "hvm" || im.Root() == nil {
		t.Errorf("registration: %+v", im)
	}
	inspect(t, id, 0, func(root string) {
		if got := readFile(t, filepath.Join(root, "opt/plain/hello.txt")); got != "hello from the package\n" {
			t.Errorf("package file: %q", got)
		}
		if s := dpkgStatus(t, root, "aminator-plain"); s != "install ok installed" {
			t.Errorf("dpkg status %q", s)
		}
		if got := readFile(t, filepath.Join(root, "opt/plain/order")); got != "first\nsecond\n" {
			t.Errorf("scripts ran in the wrong order or a non-executable one ran: %q", got)
		}
		env := readFile(t, filepath.Join(root, "opt/plain/script-env"))
		for _, w := range []string{"AMINATOR_AMI_NAME=aminator-plain-2.5-3-x86_64-t1-ebs", "AMINATOR_PACKAGE=aminator-plain",
			"AMINATOR_BASE_AMI_ID=" + b, "AMINATOR_STORE_TYPE=ebs", "AMINATOR_CREATOR=tester", "AMINATOR_AMI_SUFFIX=t1", "AMINATOR_VM_TYPE=hvm"} {
			if !strings.Contains(env, w) {
				t.Errorf("script environment lacks %s:\n%s", w, env)
			}
		}
		// What the bake put in the image for its own use is gone again.
		for _, p := range []string{"usr/sbin/policy-rc.d", "etc/resolv.conf.aminator-orig", "usr/sbin/service.aminator-short-circuit"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("/%s was left in the image", p)
			}
		}
		if st, err := os.Lstat(filepath.Join(root, "usr/sbin/service")); err != nil || !st.Mode().IsRegular() {
			t.Errorf("/usr/sbin/service not restored: %v %v", st, err)
		}
		if got := readFile(t, filepath.Join(root, "etc/resolv.conf")); got != "" {
			t.Errorf("the image's resolv.conf was not restored: %q", got)
		}
		if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
			t.Errorf("staged files left in /tmp: %v", ents)
		}
	})
	if h := hashFile(t, "/usr/sbin/policy-rc.d"); h != hostPolicy {
		t.Errorf("the HOST's /usr/sbin/policy-rc.d changed: %s -> %s", hostPolicy, h)
	}
	if h := hashFile(t, "/etc/resolv.conf"); h != hostResolv {
		t.Errorf("the HOST's /etc/resolv.conf changed")
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
	// The same name again is a clear error, found before any work.
	r = aminate(t, "-B", b, "-s", "t1", deb)
	if r.Code != 2 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("duplicate name: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A postinst that tries every way to start a service: policy-rc.d stops
// invoke-rc.d, the short-circuited service and start-stop-daemon do
// nothing, and a daemon it forks by hand dies with its command's sandbox.
func TestServicesNotStarted(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-svc", Version: "1.0-1",
		Files: map[string]string{"/etc/init.d/aminator-svc": `#!/bin/sh
case "$1" in
start) touch /var/lib/aminator-svc.started; start-stop-daemon --start --background --exec /bin/sleep -- 600 ;;
esac
exit 0
`},
		Exec: []string{"/etc/init.d/aminator-svc"},
		Postinst: `invoke-rc.d aminator-svc start || true
service aminator-svc start || true
start-stop-daemon --start --background --exec /bin/sleep -- 601 || true
touch /var/lib/aminator-svc.postinst-ran
hostname aminator-evil-host || true
echo aminator-evil > /proc/sys/kernel/domainname || true
mknod /dev/aminator-evil c 1 3 || true
echo ok > /dev/null
sleep 602 >/dev/null 2>&1 &`,
	})
	hostname, _ := os.Hostname()
	domain, _ := os.ReadFile("/proc/sys/kernel/domainname")
	r := aminate(t, "-B", b, "-n", "svc", "-s", "t1", deb)
	// Nothing a package script does reaches the host.
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("the host's hostname changed to %q", h)
	}
	if d, _ := os.ReadFile("/proc/sys/kernel/domainname"); string(d) != string(domain) {
		t.Errorf("the host's domainname changed to %q", d)
	}
	if _, err := os.Lstat("/dev/aminator-evil"); err == nil {
		os.Remove("/dev/aminator-evil")
		t.Error("a package script made a device node in the host's /dev")
	}
	id := mustOK(t, r)
	// Each command runs as PID 1 of its own PID namespace (issue 10): a
	// daemon a postinst forks dies with dpkg, before the bake unmounts, so
	// there is nothing left to end (pgrep below checks that it is gone).
	inspect(t, id, 0, func(root string) {
		if _, err := os.Stat(filepath.Join(root, "var/lib/aminator-svc.postinst-ran")); err != nil {
			t.Errorf("postinst did not run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "var/lib/aminator-svc.started")); err == nil {
			t.Error("the service was started during the bake")
		}
	})
	out, _ := exec.Command("pgrep", "-f", "sleep 60[012]").Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("processes from the chroot still run: %s", out)
	}
}

// A package that depends on one from the mirror: dpkg -i fails, apt-get -f
// install brings the dependency. Also installs by repository name and by URL.
func TestDependenciesRepoAndURL(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-deps", Version: "0.1", Depends: "hello"})
	id := mustOK(t, aminate(t, "-B", b, "-s", "deps", deb))
	if n := showImage(t, id).Name; n != "aminator-deps-0.1-0-x86_64-deps-ebs" {
		t.Errorf("name without a release: %q", n)
	}
	inspect(t, id, 0, func(root string) {
		if s := dpkgStatus(t, root, "hello"); s != "install ok installed" {
			t.Errorf("dependency hello: status %q", s)
		}
		if _, err := os.Stat(filepath.Join(root, "usr/bin/hello")); err != nil {
			t.Error(err)
		}
	})

	// By name, from the image's repositories, with a version.
	id = mustOK(t, aminate(t, "-b", baseName, "-s", "repo", "hello=2.10-3"))
	if v := showImage(t, id).Tags["appversion"]; v != "hello-2.10-3" {
		t.Errorf("appversion %q", v)
	}

	// From a URL (https, from a server on the loopback the configuration allows).
	srv := fetchtest.NewServer(t, http.FileServer(http.Dir(dir)))
	conf := srv.ConfigFile(t)
	plain := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-url", Version: "3.0-2", Files: map[string]string{"/opt/url": "u\n"}})
	id = mustOK(t, aminate(t, "--config", conf, "-B", b, "-s", "url", srv.URL+"/"+filepath.Base(plain)))
	if n := showImage(t, id).Name; n != "aminator-url-3.0-2-x86_64-url-ebs" {
		t.Errorf("name %q", n)
	}
	r := aminate(t, "--config", conf, "-B", b, "-s", "url404", srv.URL+"/missing.deb")
	if r.Code != 1 || !strings.Contains(r.Stderr, "404") {
		t.Errorf("missing URL: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A failing postinst fails the bake with exit 1 and leaves nothing: no
// image, no volume, no snapshot, no mount, no loop device.
func TestFailingPackageLeavesNothing(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	images := imageCount(t)
	snaps := countLines(t, "snapshots", "list")
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-fail", Version: "1.0", Postinst: "echo postinst-failing-on-purpose >&2; exit 1"})
	r := aminate(t, "-B", b, "-s", "fail", deb)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "postinst-failing-on-purpose") {
		t.Errorf("the error does not show the package's output:\n%s", r.Stderr)
	}
	if n := imageCount(t); n != images {
		t.Errorf("images %d -> %d", images, n)
	}
	if n := countLines(t, "snapshots", "list"); n != snaps {
		t.Errorf("snapshots %d -> %d", snaps, n)
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
	if ents, _ := os.ReadDir(filepath.Join(stateDir(), "mnt")); len(ents) != 0 {
		t.Errorf("mount points left: %v", ents)
	}
}

func countLines(t *testing.T, args ...string) int {
	t.Helper()
	out := mustOK(t, aminate(t, args...))
	return len(strings.Split(out, "\n")) - 1 // minus the header
}

// Ctrl-C in the middle of an install cancels the bake and cleans up; while
// it runs, its namespace does not pin another state's store filesystem.
func TestCancelMidInstall(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-slow", Version: "1.0", Postinst: "echo AMINATOR-TEST-SLEEPING; sleep 300"})
	// Another state directory's store filesystem, mounted before the bake.
	other, runOther := ownState(t, "other-state-")
	mustOK(t, runOther("init"))
	if storeLoops(other) != 1 {
		t.Fatalf("the other state's store is not mounted on a loop device: %v", testutil.Leaks(other))
	}
	cmd := exec.Command(binary(), "-B", b, "-s", "slow", deb)
	cmd.Env = env()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logPath := make(chan string, 1)
	var errText strings.Builder
	var mu sync.Mutex
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			mu.Lock()
			errText.WriteString(s.Text() + "\n")
			mu.Unlock()
			if m := regexp.MustCompile(`log=(\S+)`).FindStringSubmatch(s.Text()); m != nil {
				select {
				case logPath <- m[1]:
				default:
				}
			}
		}
	}()
	var lp string
	select {
	case lp = <-logPath:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no log path printed")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(lp)
		if strings.Contains(string(b), "AMINATOR-TEST-SLEEPING") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the postinst never started; log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The running bake's namespace does not hold the other state's store:
	// unmounted there, its loop device goes now, not when the bake ends.
	mustOK(t, runOther("init", "--unmount"))
	for deadline := time.Now().Add(20 * time.Second); storeLoops(other) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the other state's store stays on a loop device while a bake runs: %v", testutil.Leaks(other))
			break
		}
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	took := time.Since(start)
	mu.Lock()
	text := errText.String()
	mu.Unlock()
	if err == nil {
		t.Fatalf("a cancelled bake exited 0\n%s", text)
	}
	if !strings.Contains(text, "cancel") {
		t.Errorf("the output does not say it was cancelled:\n%s", text)
	}
	t.Logf("cancel took %s", took.Round(time.Millisecond))
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 300").Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("the postinst still runs: %s", out)
	}
}

// storeLoops counts the loop devices of the store filesystem files under dir.
func storeLoops(dir string) int {
	n := 0
	for _, l := range testutil.Leaks(dir) {
		if strings.HasPrefix(l, "loop ") && (strings.HasSuffix(l, "data.xfs") || strings.HasSuffix(l, "data.btrfs")) {
			n++
		}
	}
	return n
}

// Two bakes from one base at the same time both succeed.
func TestConcurrentBakes(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: fmt.Sprintf("aminator-par%d", i), Version: "1.0", Files: map[string]string{"/opt/par": fmt.Sprint(i)}})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = aminate(t, "-B", b, "-s", "par", deb)
		}(i)
	}
	wg.Wait()
	for i, r := range res {
		id := mustOK(t, r)
		inspect(t, id, 0, func(root string) {
			if got := readFile(t, filepath.Join(root, "opt/par")); got != fmt.Sprint(i) {
				t.Errorf("bake %d: /opt/par = %q", i, got)
			}
		})
	}
}

// --root-volume-size grows the volume and the filesystem; a size below the
// base's is refused before any work.
func TestGrowRootVolume(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-grow", Version: "1.0"})
	id := mustOK(t, aminate(t, "-B", b, "-s", "grow", "--root-volume-size", "2", deb))
	im := showImage(t, id)
	if im.Root().VolumeSizeGiB != 2 {
		t.Errorf("root volume %d GiB, want 2", im.Root().VolumeSizeGiB)
	}
	inspect(t, id, 0, func(root string) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(root, &st); err != nil {
			t.Fatal(err)
		}
		if size := int64(st.Blocks) * st.Bsize; size < 1900<<20 {
			t.Errorf("filesystem is %d MiB after growing to 2 GiB", size>>20)
		}
	})
}

// A partitioned base (GPT, root on partition 1): the partition is reached
// without the kernel's partition scan, and grown when asked.
func TestPartitionedBase(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	raw := testutil.DebianBase(t)
	fi, _ := os.Stat(raw)
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(fi.Size() + 2<<20)
	f.Close()
	sf := exec.Command("sfdisk", "--quiet", disk)
	sf.Stdin = strings.NewReader("label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
	if b, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, b)
	}
	if b, err := exec.Command("dd", "if="+raw, "of="+disk, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, b)
	}
	mustOK(t, aminate(t, "images", "import", "partitioned-base", disk))
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-part", Version: "1.0", Files: map[string]string{"/opt/part": "p\n"}})
	r := aminate(t, "-b", "partitioned-base", "-s", "nopart", deb)
	if r.Code != 1 || !strings.Contains(r.Stderr, "--partition") {
		t.Errorf("a partitioned base without --partition: exit %d, want a hint\n%s", r.Code, r.Stderr)
	}
	r = aminate(t, "-b", "partitioned-base", "-s", "small", "--partition", "1", "--root-volume-size", "1", deb)
	if r.Code != 2 || !strings.Contains(r.Stderr, "smaller than the base") {
		t.Errorf("shrinking: exit %d\n%s", r.Code, r.Stderr)
	}
	id := mustOK(t, aminate(t, "-b", "partitioned-base", "-s", "part", "--partition", "1", "--root-volume-size", "2", deb))
	inspect(t, id, 1, func(root string) {
		if got := readFile(t, filepath.Join(root, "opt/part")); got != "p\n" {
			t.Errorf("/opt/part = %q", got)
		}
		var st syscall.Statfs_t
		syscall.Statfs(root, &st)
		if size := int64(st.Blocks) * st.Bsize; size < 1900<<20 {
			t.Errorf("partition filesystem is %d MiB after growing to 2 GiB", size>>20)
		}
	})
	mustOK(t, aminate(t, "images", "rm", "partitioned-base"))
}

// --preserve-on-error keeps the volume and the mounts of a failed bake
// and says how to remove them; doing so leaves nothing.
func TestPreserveOnError(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-keep", Version: "1.0", Postinst: "exit 3"})
	r := aminate(t, "-B", base(t), "-s", "keep", "--preserve-on-error", deb)
	if r.Code != 1 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	m := regexp.MustCompile(`command="umount -R (\S+)"`).FindStringSubmatch(r.Stderr)
	v := regexp.MustCompile(`command="aminate volumes rm (vol-[0-9a-f]+)"`).FindStringSubmatch(r.Stderr)
	if m == nil || v == nil {
		t.Fatalf("no removal hints:\n%s", r.Stderr)
	}
	if ms, _ := mount.Under(m[1]); len(ms) == 0 {
		t.Errorf("%s is not mounted any more", m[1])
	}
	if _, err := os.Stat(filepath.Join(m[1], "var/lib/dpkg/info/aminator-keep.postinst")); err != nil {
		t.Errorf("the failed install is not there to inspect: %v", err)
	}
	// A bake that starts meanwhile copies the kept mount into its new
	// namespace; it must let go of it, or the volume stays attached after
	// the user unmounts it, for as long as that bake runs.
	slow := startSlowBake(t, "pinning")
	defer func() { slow.Process.Signal(syscall.SIGTERM); slow.Wait() }()
	if b, err := exec.Command("umount", "-R", m[1]).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, b)
	}
	mustOK(t, aminate(t, "volumes", "rm", v[1]))
	os.Remove(m[1])
}

// -i opens a shell in the chroot after the install; what it does ends up
// in the image.
func TestInteractive(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-shell", Version: "1.0"})
	cmd := exec.Command(binary(), "-B", base(t), "-s", "shell", "-i", deb)
	cmd.Env = env()
	cmd.Stdin = strings.NewReader("echo \"$AMINATOR_AMI_NAME\" > /opt/from-shell\nexit\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("interactive bake: %v", err)
	}
	inspect(t, strings.TrimSpace(string(out)), 0, func(root string) {
		if got := readFile(t, filepath.Join(root, "opt/from-shell")); got != "aminator-shell-1.0-0-x86_64-shell-ebs\n" {
			t.Errorf("/opt/from-shell = %q", got)
		}
	})
}

// -V bakes on a given volume (an external pool's) and leaves it in place;
// --block-device cannot pick a loop device.
func TestExternalVolume(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	vol := mustOK(t, aminate(t, "volumes", "create", b))
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-external", Version: "1.0", Files: map[string]string{"/opt/ext": "e\n"}})
	id := mustOK(t, aminate(t, "-B", b, "-s", "ext", "-V", vol, deb))
	inspect(t, id, 0, func(root string) {
		if got := readFile(t, filepath.Join(root, "opt/ext")); got != "e\n" {
			t.Errorf("/opt/ext = %q", got)
		}
	})
	out := mustOK(t, aminate(t, "volumes", "list"))
	if !strings.Contains(out, vol) || !strings.Contains(out, "available") || strings.Contains(out, "ORPHANED") {
		t.Errorf("the external volume should stay, available:\n%s", out)
	}
	r := aminate(t, "-B", b, "-s", "dev", "--block-device", "/dev/sdf", deb)
	if r.Code != 1 || !strings.Contains(r.Stderr, "picked by the kernel") {
		t.Errorf("--block-device on the local cloud: exit %d\n%s", r.Code, r.Stderr)
	}
	mustOK(t, aminate(t, "volumes", "rm", vol))
}
