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

// runScripts runs every executable /var/local/*.sh in the image, sorted,
// with the AMINATOR_* environment; the first failure fails the bake.
func runScripts(ctx context.Context, c plugin.Chroot, env map[string]string, log *slog.Logger) error {
	entries, err := fs.ReadDir(c.Root().FS(), "var/local")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list /var/local in the image: %w", err)
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
	for _, n := range names {
		log.Info("running image script", "script", "/var/local/"+n)
		if err := c.Run(ctx, plugin.Run{Argv: []string{"/var/local/" + n}, Env: env}); err != nil {
			return fmt.Errorf("script /var/local/%s: %w", n, err)
		}
	}
	return nil
}
