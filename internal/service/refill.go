package service

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// refillEnv names the file where a job in its namespaces lists the pools
// it took from; the parent, outside them, starts the refills (a process
// started inside would die with the job's PID namespace).
const refillEnv = "_AMINATOR_REFILL"

// newRefillList makes the refill list in the state directory's tmp/ and
// holds a flock on it while the parent lives: gc removes the file of a
// parent that died (even by SIGKILL) and leaves a live one's alone.
func newRefillList(stateDir string) (*flock.Lock, error) {
	dir := filepath.Join(stateDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("refill list: %w", err)
	}
	f, err := os.CreateTemp(dir, "refill-*")
	if err != nil {
		return nil, fmt.Errorf("refill list: %w", err)
	}
	f.Close()
	return flock.TryExclusive(f.Name())
}

// requestRefill adds a snapshot to the parent's refill list (a job not
// run in namespaces has none: nothing is refilled).
func requestRefill(snap string) {
	p := os.Getenv(refillEnv)
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, snap)
	f.Close()
}

// startRefills starts a detached `aminate pool fill` for each snapshot
// listed, and removes the list.
func startRefills(cfg *config.Config, list *flock.Lock) {
	b, err := os.ReadFile(list.Path())
	os.Remove(list.Path())
	list.Unlock()
	if err != nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, snap := range strings.Fields(string(b)) {
		if seen[snap] {
			continue
		}
		seen[snap] = true
		cmd := exec.Command(self, refillArgs(cfg, snap)...)
		cmd.Env = os.Environ()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if cmd.Start() == nil {
			cmd.Process.Release()
		}
	}
}

// refillArgs are the arguments of the refill of a snapshot's pool: in the
// job's environment and region (an EC2 pool is the environment's), with
// its --config file.
func refillArgs(cfg *config.Config, snap string) []string {
	args := []string{"pool", "fill", "--snapshot", snap, "--state-dir", cfg.StateDir}
	if e := cfg.Context.Environment; e != "" {
		args = append(args, "-e", e)
	}
	if r := cfg.Context.Region; r != "" {
		args = append(args, "-r", r)
	}
	if cfg.ExtraFile != "" { // its plugin settings (pool_attach, volume_type) hold for the refill too
		args = append(args, "--config", cfg.ExtraFile)
	}
	return args
}
