package bake

import "context"

// Step is one operation of a bake, as Packer's multistep has them, but on
// a typed State instead of an untyped bag. A step reads what earlier steps
// left in the State, writes what it makes, and registers on s.Undo the
// undo of whatever it made at the moment it exists (Release: always,
// Rollback: only if the bake fails), so a failure anywhere undoes exactly
// what was done, in reverse.
type Step interface {
	// Name is the stage the step runs as: a `==> name` line on a terminal
	// and an entry in the timings. A step that only checks or computes,
	// doing no work worth a line, has no name ("") and runs untimed.
	Name() string
	// Run does the step's work; for a named step it is timed.
	Run(ctx context.Context, s *State) error
}

// Doner is a step with something to do once its stage has ended: say what
// it made, under its stage line, and refuse what cannot go on (a volume
// too small, a name taken). Its error is the step's, not the stage's.
type Doner interface {
	Done(ctx context.Context, s *State) error
}

// When makes step optional: it runs only if cond holds when its turn
// comes, which may depend on what earlier steps found.
func When(cond func(*State) bool, step Step) Step {
	return when{cond: cond, step: step}
}

type when struct {
	cond func(*State) bool
	step Step
}

func (w when) Name() string                            { return w.step.Name() }
func (w when) Run(ctx context.Context, s *State) error { return w.step.Run(ctx, s) }

// Group runs steps as one stage called name: one `==> name` line and one
// timing for all of them (snapshot and register have one line, as they
// always had). The steps' own names are not shown, none is optional (no
// When inside a Group), and each step's Done runs after the stage, in
// order.
func Group(name string, steps ...Step) Step {
	return group{name: name, steps: steps}
}

type group struct {
	name  string
	steps []Step
}

func (g group) Name() string { return g.name }

func (g group) Run(ctx context.Context, s *State) error {
	for _, st := range g.steps {
		if err := st.Run(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (g group) Done(ctx context.Context, s *State) error {
	for _, st := range g.steps {
		if d, ok := st.(Doner); ok {
			if err := d.Done(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run runs steps in order and stops at the first error. What the steps
// made is undone when the caller finishes s.Undo.
func (s *State) Run(ctx context.Context, steps ...Step) error {
	for _, st := range steps {
		if w, ok := st.(when); ok {
			if !w.cond(s) {
				continue
			}
			st = w.step
		}
		if err := s.runStep(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) runStep(ctx context.Context, st Step) error {
	if name := st.Name(); name != "" {
		if err := s.Undo.Stage(ctx, name, func(ctx context.Context) error { return st.Run(ctx, s) }); err != nil {
			return err
		}
	} else if err := st.Run(ctx, s); err != nil {
		return err
	}
	if d, ok := st.(Doner); ok {
		return d.Done(ctx, s)
	}
	return nil
}
