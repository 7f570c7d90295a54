package bake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// scripts runs the image's own scripts, every executable /var/local/*.sh,
// with the AMINATOR_* environment.
type scripts struct{}

func (scripts) Name() string { return "scripts" }

func (scripts) Run(ctx context.Context, s *State) error {
	host, _ := s.Env.Cloud.Host(ctx)
	s.ScriptEnv = map[string]string{
		"AMINATOR_PACKAGE": s.Package.Name, "AMINATOR_ENVIRONMENT": s.Env.Name, "AMINATOR_BASE_AMI_ID": s.Base.ID,
		"AMINATOR_BASE_AMI_NAME": s.Base.Name, "AMINATOR_REGION": host.Region, "AMINATOR_AMI_NAME": s.Name,
		"AMINATOR_AMI_SUFFIX": s.Req.Suffix, "AMINATOR_CREATOR": s.Req.Creator, "AMINATOR_VM_TYPE": s.Req.VMType,
		"AMINATOR_STORE_TYPE": s.Env.Finalizer.StoreType(),
	}
	ran, err := runScripts(ctx, s.Chroot, s.ScriptEnv, s.Log)
	s.RanInImage = s.RanInImage || ran > 0
	return err
}

// runScripts runs every executable /var/local/*.sh in the image, sorted,
// with the AMINATOR_* environment; the first failure fails the bake. ran
// counts the scripts started.
func runScripts(ctx context.Context, c plugin.Chroot, env map[string]string, log *slog.Logger) (ran int, err error) {
	entries, err := fs.ReadDir(c.Root().FS(), "var/local")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list /var/local in the image: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sh") {
			continue
		}
		st, err := c.Root().Stat("var/local/" + e.Name())
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for i, n := range names {
		log.Info("running image script", "script", "/var/local/"+n)
		if err := c.Run(ctx, plugin.Run{Argv: []string{"/var/local/" + n}, Env: env}); err != nil {
			return i + 1, fmt.Errorf("script /var/local/%s: %w", n, err)
		}
	}
	return len(names), nil
}
