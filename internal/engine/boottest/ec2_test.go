package boottest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The VM is launched as EC2 launches an instance: the firmware of the boot
// mode, the disk as an NVMe device with an EBS volume id as its serial,
// SMBIOS of Amazon EC2 with an ec2-prefixed UUID that is also the serial
// (cloud-init's EC2 detection compares the two), one virtio NIC with the
// MAC the metadata lists, and ssh forwarded on the namespace's loopback.
func TestEC2Args(t *testing.T) {
	for _, mode := range []string{"legacy-bios", "uefi"} {
		args := strings.Join(ec2Args(platforms["x86_64"], "/d/disk.raw", mode, 1024, 2222, []forward{{80, 4080}}, []string{"-bios", ovmf}), " ")
		for _, want := range []string{
			"-machine q35", "-drive file=/d/disk.raw,format=raw,if=none,id=root", "-device nvme,drive=root,serial=vol",
			"manufacturer=Amazon EC2,product=t3.micro", "hostfwd=tcp:127.0.0.1:2222-:22", "hostfwd=tcp:127.0.0.1:4080-:80",
			"mac=" + guestMAC,
		} {
			if !strings.Contains(args, want) {
				t.Errorf("%s: args lack %q:\n%s", mode, want, args)
			}
		}
		if strings.Contains(args, "-kernel") || strings.Contains(args, "restrict=on") {
			t.Errorf("%s: a launch like EC2's boots the disk's loader, in its own namespace: %s", mode, args)
		}
		if got := strings.Contains(args, "-bios "+ovmf); got != (mode == "uefi") {
			t.Errorf("%s: OVMF %v: %s", mode, got, args)
		}
		uuid := regexp.MustCompile(`-uuid (\S+)`).FindStringSubmatch(args)
		if uuid == nil || !strings.HasPrefix(uuid[1], "ec2") || !strings.Contains(args, "serial="+uuid[1]) {
			t.Errorf("%s: system UUID and serial: %s", mode, args)
		}
		serial := regexp.MustCompile(`serial=(vol[0-9a-f]+)`).FindStringSubmatch(args)
		if serial == nil || len(serial[1]) != 20 {
			t.Errorf("%s: NVMe serial %v is not an EBS volume id without its dash", mode, serial)
		}
	}
}

// The disk's loaders choose the launch: a disk without one is booted by
// its kernel, one with both by UEFI unless legacy-bios is asked for.
func TestLaunchOf(t *testing.T) {
	loaders := map[string][2]bool{"": {}, "bios+uefi": {true, true}, "uefi": {false, true}, "legacy-bios": {true, false}}
	for _, c := range []struct {
		boot, like, mode, wantLike, wantMode string
	}{
		{"", "", "", LikeKernel, ""},
		{"bios+uefi", "", "", LikeEC2, "uefi"},
		{"bios+uefi", "", "legacy-bios", LikeEC2, "legacy-bios"},
		{"bios+uefi", "kernel", "", LikeKernel, ""},
		{"uefi", "", "", LikeEC2, "uefi"},
		{"legacy-bios", "", "", LikeEC2, "legacy-bios"},
		// Asked for, a launch like EC2's of a loader-less disk fails at the loader.
		{"", "ec2", "", LikeEC2, "uefi"},
	} {
		l := loaders[c.boot]
		like, mode, err := chooseLaunch(l[0], l[1], Options{Like: c.like, BootMode: c.mode}, platforms["x86_64"])
		if err != nil || like != c.wantLike || mode != c.wantMode {
			t.Errorf("boot %q like %q mode %q: %s %s %v, want %s %s", c.boot, c.like, c.mode, like, mode, err, c.wantLike, c.wantMode)
		}
	}
	if _, _, err := chooseLaunch(false, false, Options{Like: "xen"}, platforms["x86_64"]); err == nil {
		t.Error("like xen accepted")
	}
}

// A failed launch names the first stage it did not reach.
func TestDiagnose(t *testing.T) {
	st := newStages()
	steps := []struct {
		line, stage, want string
	}{
		{"", "", "no loader: the BIOS (SeaBIOS) found nothing"},
		{"Welcome to GRUB!", "", "no loader: the BIOS (SeaBIOS) found nothing"},
		{"[    0.000000] Linux version 6.1.0-50-cloud-amd64", "", "kernel without root"},
		{"Welcome to Debian GNU/Linux 12 (bookworm)!", "", "no network"},
		{"", StageMetadata, "key not installed: the guest read the instance metadata"},
		{"", StageKey, "no ssh"},
		{"", StageSSH, "no login"},
	}
	for _, s := range steps {
		if s.line != "" {
			st.console(s.line)
		}
		if s.stage != "" {
			st.reach(s.stage)
		}
		if got := st.diagnose(platforms["x86_64"].firmwareName("legacy-bios"), "admin", time.Minute); !strings.HasPrefix(got, s.want) {
			t.Errorf("after %q %q: %q, want %q", s.line, s.stage, got, s.want)
		}
	}
	st.denied = true
	if got := st.diagnose("", "admin", time.Minute); !strings.Contains(got, `refused the instance's key for user "admin"`) {
		t.Errorf("denied: %q", got)
	}
	if n := len(st.list()); n != 5 {
		t.Errorf("stages %+v", st.list())
	}
}

// The host keys ssh recorded are reported by fingerprint, as ssh-keygen -l
// prints them.
func TestHostKeys(t *testing.T) {
	known := filepath.Join(t.TempDir(), "known_hosts")
	line := "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	got := hostKeys(known)
	if len(got) != 1 || !strings.HasPrefix(got[0], "ssh-ed25519 SHA256:") {
		t.Errorf("%q", got)
	}
}
