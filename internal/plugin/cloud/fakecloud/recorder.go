package fakecloud

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Recorder records the calls a test's fakes see, in order, and makes the
// ones it is told fail. Its Hook goes into the fake cloud and the fake
// chroot alike, so the calls of both are in one list.
type Recorder struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	on    map[string]func()
}

// FailOn makes the first call named call (or starting with it, then a
// space) fail with err; nil err stands for an injected failure.
func (r *Recorder) FailOn(call string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = map[string]error{}
	}
	if err == nil {
		err = fmt.Errorf("injected failure of %s", call)
	}
	r.fail[call] = err
}

// On runs fn when call is made, before the call goes on (to cancel a
// context in the middle of a step, for example).
func (r *Recorder) On(call string, fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on == nil {
		r.on = map[string]func(){}
	}
	r.on[call] = fn
}

// Hook records call and fails it if told to.
func (r *Recorder) Hook(call string) error {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	var fn func()
	var err error
	for name, f := range r.on {
		if matches(call, name) {
			fn = f
		}
	}
	for name, e := range r.fail {
		if matches(call, name) {
			err = e
			delete(r.fail, name)
		}
	}
	r.mu.Unlock()
	if fn != nil {
		fn()
	}
	return err
}

func matches(call, name string) bool {
	return call == name || strings.HasPrefix(call, name+" ")
}

// Calls are the calls made so far, in order.
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// After returns the calls made after the first one named call (or
// starting with it); nil if there was none.
func (r *Recorder) After(call string) []string {
	calls := r.Calls()
	for i, c := range calls {
		if matches(c, call) {
			return calls[i+1:]
		}
	}
	return nil
}
