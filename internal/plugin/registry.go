package plugin

import (
	"fmt"
	"sort"
	"sync"
)

// Registration describes one plugin implementation.
type Registration struct {
	Kind        Kind
	Name        string
	Description string
	// NewConfig returns a pointer to the plugin's settings struct filled with
	// its defaults; its yaml tags are the keys allowed in the plugin's
	// section of the configuration. Nil means the plugin takes no settings.
	NewConfig func() any
	// New builds the plugin from its decoded settings (the NewConfig value).
	New func(cfg any, deps Deps) (any, error)
	// Store readies a cloud plugin's store on this host before New (nil:
	// the cloud has none to ready).
	Store StoreSetup
}

var (
	mu       sync.RWMutex
	registry = map[Kind]map[string]Registration{}
)

// Register adds a plugin; it panics on a duplicate, which is a programming error.
func Register(r Registration) {
	mu.Lock()
	defer mu.Unlock()
	if registry[r.Kind] == nil {
		registry[r.Kind] = map[string]Registration{}
	}
	if _, dup := registry[r.Kind][r.Name]; dup {
		panic(fmt.Sprintf("plugin %s.%s registered twice", r.Kind, r.Name))
	}
	registry[r.Kind][r.Name] = r
}

// Lookup finds a registered plugin.
func Lookup(kind Kind, name string) (Registration, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[kind][name]
	return r, ok
}

// Names lists the registered plugins of a kind, sorted.
func Names(kind Kind) []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for n := range registry[kind] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsKind reports whether s names a plugin kind.
func IsKind(s string) bool {
	for _, k := range Kinds {
		if string(k) == s {
			return true
		}
	}
	return false
}
