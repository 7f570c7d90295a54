package bake

import (
	"context"
	"os"

	"github.com/aminator-go/aminator/internal/plugin"
)

// inspectPackage asks the provisioner which package the bake will
// install, downloading a URL's file now (removed when the bake ends).
type inspectPackage struct{}

// inspectable says the provisioner can tell without a volume: it is an
// Inspector, and the package is a file, a URL or a version given.
func inspectable(s *State) bool {
	_, ok := s.Env.Provisioner.(plugin.Inspector)
	return ok && (s.Ref.Kind != "repo" || s.Ref.Version != "")
}

func (inspectPackage) Name() string { return "inspect package" }

func (inspectPackage) Run(ctx context.Context, s *State) error {
	ref, known, err := s.Env.Provisioner.(plugin.Inspector).Inspect(ctx, s.Ref)
	if ref.Path != "" && ref.Path != s.Ref.Path { // downloaded
		path := ref.Path
		s.Undo.Release("remove "+path, "", func(context.Context) error { return os.Remove(path) })
	}
	s.Ref, s.Known = ref, known
	if err != nil && ref.Kind == "file" {
		return &UsageError{err}
	}
	return err
}

func (inspectPackage) Done(_ context.Context, s *State) error {
	if s.Known != nil {
		s.Log.Info("package", "name", s.Known.Name, "version", s.Known.FullVersion)
	}
	return nil
}
