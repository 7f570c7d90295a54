package bake

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Environment is one instantiated plugin of each kind.
type Environment struct {
	Name        string
	Cloud       plugin.Cloud
	Volume      plugin.Volumes
	Distro      plugin.Distro
	Provisioner plugin.Provisioner
	Finalizer   plugin.Finalizer
	StateDir    string
	// Binfmt is how a base of another architecture's programs run here.
	Binfmt config.Binfmt
	// Attest, when set, writes and keeps every image's SBOMs and signed
	// provenance (issue 21).
	Attest *Attester

	closers []func() error
}

// OnClose has Close call fn too (for what the environment's user opened
// for it, such as the attestation store).
func (e *Environment) OnClose(fn func() error) { e.closers = append(e.closers, fn) }

// Close releases what the plugins hold (the cloud's database) and what
// OnClose added.
func (e *Environment) Close() error {
	var errs []error
	for _, fn := range e.closers {
		errs = append(errs, fn())
	}
	if c, ok := e.Cloud.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// NewEnvironment builds the plugins of the configured environment, in
// order, each given the ones before it.
func NewEnvironment(cfg *config.Config, log *slog.Logger) (*Environment, error) {
	name := cfg.Context.Environment
	spec, ok := cfg.Environments[name]
	if !ok {
		return nil, fmt.Errorf("no environment %q", name)
	}
	dl, err := cfg.Download.Fetcher()
	if err != nil {
		return nil, err
	}
	deps := plugin.Deps{Logger: log, StateDir: cfg.StateDir, LockDir: cfg.LockDir, Region: cfg.Context.Region, Download: dl}
	env := &Environment{Name: name, StateDir: cfg.StateDir, Binfmt: cfg.Binfmt}
	for _, kind := range plugin.Kinds {
		pname := spec[kind]
		reg, _ := plugin.Lookup(kind, pname)
		pc, err := cfg.PluginConfig(kind, pname)
		if err != nil {
			env.Close()
			return nil, err
		}
		inst, err := reg.New(pc, deps)
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("%s plugin %s: %w", kind, pname, err)
		}
		bad := func() (*Environment, error) {
			env.Close()
			return nil, fmt.Errorf("%s plugin %s does not implement the %s interface", kind, pname, kind)
		}
		switch kind {
		case plugin.KindCloud:
			if env.Cloud, ok = inst.(plugin.Cloud); !ok {
				return bad()
			}
			deps.Cloud = env.Cloud
		case plugin.KindBlockDevice:
			if deps.BlockDevice, ok = inst.(plugin.BlockDevice); !ok {
				return bad()
			}
		case plugin.KindVolume:
			if env.Volume, ok = inst.(plugin.Volumes); !ok {
				return bad()
			}
		case plugin.KindDistro:
			if env.Distro, ok = inst.(plugin.Distro); !ok {
				return bad()
			}
		case plugin.KindProvisioner:
			if env.Provisioner, ok = inst.(plugin.Provisioner); !ok {
				return bad()
			}
		case plugin.KindFinalizer:
			if env.Finalizer, ok = inst.(plugin.Finalizer); !ok {
				return bad()
			}
		}
	}
	return env, nil
}
