package boottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// keyPair makes the test's own ed25519 key pair in dir: the private key
// file ssh uses and the public key the metadata service hands out.
func keyPair(ctx context.Context, dir string) (private, public string, err error) {
	private = filepath.Join(dir, "id_ed25519")
	cmd := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aminator-boot-test", "-f", private)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("ssh-keygen: %v: %s", err, bytes.TrimSpace(out))
	}
	pub, err := os.ReadFile(private + ".pub")
	if err != nil {
		return "", "", err
	}
	return private, strings.TrimSpace(string(pub)), nil
}

// sshLogin is how the test logs in: the real ssh client, run in the VM's
// network namespace against qemu's forward of the guest's port 22.
type sshLogin struct {
	// command makes an *exec.Cmd in the VM's network namespace.
	command    func(ctx context.Context, name string, args ...string) *exec.Cmd
	key, known string
	user       string
	port       int
}

// remote is what the login runs: it proves a shell as the user works.
const remote = "id -un"

// args is the ssh command line, without the program's name.
func (l sshLogin) args() []string {
	return []string{"-i", l.key, "-p", strconv.Itoa(l.port),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
		"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + l.known,
		"-o", "LogLevel=ERROR", l.user + "@127.0.0.1", remote}
}

// String is the command that logs in, as a person would type it.
func (l sshLogin) String() string { return "ssh " + strings.Join(l.args(), " ") }

// attempt is the outcome of one try: answered says sshd spoke SSH,
// denied that it refused the key.
type attempt struct {
	ok, answered, denied bool
	detail               string
}

// try runs the login once.
func (l sshLogin) try(ctx context.Context) attempt {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := l.command(ctx, "ssh", l.args()...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	msg := strings.TrimSpace(errb.String())
	if err == nil && strings.TrimSpace(out.String()) == l.user {
		return attempt{ok: true, answered: true}
	}
	if err == nil {
		return attempt{answered: true, detail: fmt.Sprintf("%q printed %q, not the user's name", remote, out.String())}
	}
	a := attempt{detail: msg}
	a.denied = strings.Contains(msg, "Permission denied")
	a.answered = a.denied || !refused(msg)
	return a
}

// refused says the message is of a connection that never reached sshd.
func refused(msg string) bool {
	for _, s := range []string{"Connection refused", "Connection reset", "timed out", "Connection closed", "kex_exchange_identification", "banner exchange"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return msg == ""
}

// hostKeys reads the host keys ssh recorded, as "TYPE SHA256:..." lines.
func hostKeys(known string) []string {
	b, _ := os.ReadFile(known)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil {
			continue
		}
		sum := sha256.Sum256(blob)
		out = append(out, f[1]+" SHA256:"+base64.RawStdEncoding.EncodeToString(sum[:]))
	}
	return out
}
