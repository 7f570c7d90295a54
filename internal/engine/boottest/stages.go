package boottest

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// The stages of a launch like EC2's, in order: each is seen on the console,
// at the metadata service or over ssh. A launch that fails is diagnosed by
// the first stage it did not reach.
const (
	StageKernel   = "kernel"   // the firmware booted the disk's loader, which started a kernel
	StageSystem   = "system"   // the kernel mounted the root and started systemd
	StageMetadata = "metadata" // the guest has a network and reached the instance metadata
	StageKey      = "key"      // the guest fetched the SSH key from the metadata
	StageSSH      = "ssh"      // sshd answered on port 22
	StageLogin    = "login"    // ssh as the default user with the key ran a command
)

var stageOrder = []string{StageKernel, StageSystem, StageMetadata, StageKey, StageSSH, StageLogin}

// Stage is when a stage was reached, after qemu started.
type Stage struct {
	Name  string        `json:"name"`
	After time.Duration `json:"after_ns"`
}

// stages records the stages reached.
type stages struct {
	mu    sync.Mutex
	start time.Time
	seen  map[string]time.Duration
	// denied: sshd answered and refused the key.
	denied bool
}

func newStages() *stages { return &stages{start: time.Now(), seen: map[string]time.Duration{}} }

// reach records stage (the first time only).
func (s *stages) reach(stage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[stage]; !ok {
		s.seen[stage] = time.Since(s.start)
	}
}

func (s *stages) has(stage string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[stage]
	return ok
}

// list is the stages reached, in order.
func (s *stages) list() []Stage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Stage
	for _, n := range stageOrder {
		if d, ok := s.seen[n]; ok {
			out = append(out, Stage{Name: n, After: d})
		}
	}
	return out
}

// console reads a console line for the stages it shows.
func (s *stages) console(line string) {
	switch {
	case kernelLine.MatchString(line):
		s.reach(StageKernel)
	}
	// systemd's banner after the switch to the root, not GRUB's.
	if strings.Contains(line, "systemd[1]: ") || (strings.Contains(line, "Welcome to ") && !strings.Contains(line, "GRUB")) {
		s.reach(StageKernel)
		s.reach(StageSystem)
	}
}

// diagnose says which stage failed and why, for a launch that did not
// reach a login within wait (firmware names the firmware).
func (s *stages) diagnose(firmware, user string, wait time.Duration) string {
	s.mu.Lock()
	denied := s.denied
	s.mu.Unlock()
	switch {
	case !s.has(StageKernel):
		return fmt.Sprintf("no loader: %s found nothing on the disk that started a kernel within %s", firmware, wait)
	case !s.has(StageSystem):
		return "kernel without root: the kernel started but never mounted the root filesystem and started systemd (see the console)"
	case !s.has(StageMetadata):
		return "no network: the system started but never reached the instance metadata at 169.254.169.254 (no DHCP on the NIC, or nothing reads the metadata)"
	case !s.has(StageKey):
		return "key not installed: the guest read the instance metadata but never fetched its SSH key (public-keys/0/openssh-key)"
	case !s.has(StageSSH):
		return "no ssh: the guest fetched its key, but nothing answered ssh on port 22"
	case denied:
		return fmt.Sprintf("key not installed: sshd answered but refused the instance's key for user %q", user)
	}
	return fmt.Sprintf("no login: ssh as %q did not run a command within %s", user, wait)
}
