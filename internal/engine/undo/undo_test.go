package undo

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
)

func run(t *testing.T, fail, preserve bool) ([]string, []string) {
	t.Helper()
	var got []string
	p := New(slog.New(slog.DiscardHandler))
	rec := func(s string) func(context.Context) error {
		return func(context.Context) error { got = append(got, s); return nil }
	}
	ctx := context.Background()
	p.Stage(ctx, "a", func(context.Context) error { p.Release("delete", "rm it", rec("delete")); return nil })
	p.Stage(ctx, "b", func(context.Context) error { p.Release("detach", "", rec("detach")); return nil })
	u := p.Release("unmount", "umount it", rec("unmount"))
	p.Rollback("deregister", rec("deregister"))
	u.Now(ctx) // run early, as before a snapshot
	hints, err := p.Finish(ctx, fail, preserve)
	if err != nil {
		t.Fatal(err)
	}
	return got, hints
}

func TestUndoOrder(t *testing.T) {
	got, _ := run(t, false, false)
	if want := []string{"unmount", "detach", "delete"}; !reflect.DeepEqual(got, want) {
		t.Errorf("success: %v, want %v (no rollback, each undo once, reverse order)", got, want)
	}
	got, _ = run(t, true, false)
	if want := []string{"unmount", "deregister", "detach", "delete"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failure: %v, want %v", got, want)
	}
	got, hints := run(t, true, true)
	if want := []string{"unmount", "deregister", "detach"}; !reflect.DeepEqual(got, want) {
		t.Errorf("preserve: %v, want %v", got, want)
	}
	if !reflect.DeepEqual(hints, []string{"rm it"}) {
		t.Errorf("hints %v", hints)
	}
}

func TestFinishRunsAllAndJoinsErrors(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	ran := 0
	p.Release("one", "", func(context.Context) error { ran++; return nil })
	p.Release("two", "", func(context.Context) error { ran++; return errors.New("boom") })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // cleanup must still run after Ctrl-C
	_, err := p.Finish(ctx, true, false)
	if ran != 2 || err == nil {
		t.Errorf("ran %d, err %v", ran, err)
	}
	if err := p.Stage(ctx, "late", func(context.Context) error { return nil }); err == nil {
		t.Error("a stage after cancellation must not run")
	}
}
