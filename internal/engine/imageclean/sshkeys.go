package imageclean

import (
	"fmt"
	"os"
	"path"
)

// unitName is the first-boot unit that makes the SSH host keys of an
// image with an SSH server and no cloud-init.
const unitName = "aminator-ssh-host-keys.service"

// unitDir is where it goes, and unitLinks the .wants directories that
// enable it (as `systemctl enable` would, from its WantedBy).
const unitDir = "etc/systemd/system"

var unitLinks = []string{"ssh.service.wants", "multi-user.target.wants"}

// unitText runs once, on the first boot that finds no host key, before
// the SSH server (Debian's ssh.service refuses to start without keys).
const unitText = `# Installed by aminator, which removed the image's SSH host keys so that
# every instance has its own: this makes them on the first boot.
[Unit]
Description=Make the SSH host keys of this instance
Before=ssh.service sshd.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=ssh.service multi-user.target
`

// needsKeyUnit says the image has an SSH server and no cloud-init, whose
// ssh module would make the keys at first boot.
func needsKeyUnit(root *os.Root) bool {
	return exists(root, "usr/sbin/sshd") && !exists(root, "usr/bin/cloud-init")
}

func exists(root *os.Root, p string) bool {
	_, err := root.Lstat(p)
	return err == nil
}

// installKeyUnit writes the unit and enables it; it returns what it wrote.
func installKeyUnit(root *os.Root) ([]string, error) {
	unit := unitDir + "/" + unitName
	if err := root.MkdirAll(unitDir, 0o755); err != nil {
		return nil, fmt.Errorf("install %s: %w", unitName, err)
	}
	if err := writeNew(root, unit, []byte(unitText), 0o644); err != nil {
		return nil, fmt.Errorf("install %s: %w", unitName, err)
	}
	written := []string{"/" + unit}
	for _, w := range unitLinks {
		link := unitDir + "/" + w + "/" + unitName
		if err := enable(root, link, "/"+unit); err != nil {
			return written, fmt.Errorf("enable %s: %w", unitName, err)
		}
		written = append(written, "/"+link)
	}
	return written, nil
}

// enable makes link (replacing what is there) point to target.
func enable(root *os.Root, link, target string) error {
	if err := root.MkdirAll(path.Dir(link), 0o755); err != nil {
		return err
	}
	if err := root.RemoveAll(link); err != nil {
		return err
	}
	return root.Symlink(target, link)
}
