package testutil

import (
	"bytes"
	"sync"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
)

// SyncBuffer is a bytes.Buffer that goroutines (a child's log copier, a
// driver's workers) may write while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NewPlugin builds the registered plugin kind/name as the configuration
// would, from cfg (nil: its defaults) and deps, as a T (plugin.Distro,
// plugin.Finalizer, ...). The plugin's package must be imported (package
// builtin imports them all).
func NewPlugin[T any](t testing.TB, kind plugin.Kind, name string, cfg any, deps plugin.Deps) T {
	t.Helper()
	reg, ok := plugin.Lookup(kind, name)
	if !ok {
		t.Fatalf("no %s plugin %s", kind, name)
	}
	if cfg == nil && reg.NewConfig != nil {
		cfg = reg.NewConfig()
	}
	inst, err := reg.New(cfg, deps)
	if err != nil {
		t.Fatalf("%s plugin %s: %v", kind, name, err)
	}
	p, ok := inst.(T)
	if !ok {
		t.Fatalf("%s plugin %s is a %T", kind, name, inst)
	}
	return p
}
