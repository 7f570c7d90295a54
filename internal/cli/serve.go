package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/service"
)

// serveOptions are serve's flags.
type serveOptions struct {
	listen, natsURL, natsListen string
	embedded, noAPI             bool
	regions                     []string
	workers                     int
	packageDir                  string
}

func (a *app) serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bakery: an HTTP API and dashboard, and workers that take bakes off a NATS JetStream queue",
		Long: `Run the bakery service. API servers take bake requests over HTTP and put
them on a NATS JetStream work queue per region; workers (here: one set per
--worker-region) take them off, check each again and run it in a child
aminate process. Every bake's record and log live in JetStream, so API
servers and workers in several regions share them. Identical requests are
answered from what is running or done (the resolved base image is part of
the identity), and concurrent identical requests collapse into one bake.

  aminate serve --embedded-nats                 # one host: NATS inside, API on 127.0.0.1:8420, a worker for --region
  aminate serve --nats nats://q:4222 --no-api --worker-region us-west-2   # a worker in another region`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if o.embedded == (o.natsURL != "") {
				return usagef("give --nats URL or --embedded-nats")
			}
			if !cmd.Flags().Changed("worker-region") {
				o.regions = []string{cfg.Context.Region}
			}
			// Before the API resolves bases in the local cloud: its store, mounted or set up.
			if err := service.PrepareEnvironmentStore(cfg, a.logger(cfg.Context.Debug)); err != nil {
				return err
			}
			return a.serve(cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8420", "address of the API and dashboard")
	f.StringVar(&o.natsURL, "nats", "", "NATS server URL (with JetStream)")
	f.BoolVar(&o.embedded, "embedded-nats", false, "run a NATS server with JetStream inside, keeping its data in the state directory")
	f.StringVar(&o.natsListen, "embedded-nats-listen", "127.0.0.1:-1", "where the embedded NATS server listens (host:port; -1 picks a port)")
	f.BoolVar(&o.noAPI, "no-api", false, "run only workers")
	f.StringSliceVar(&o.regions, "worker-region", nil, "run workers for these regions (default: --region); none with --worker-region=''")
	f.IntVar(&o.workers, "workers", 2, "bakes at once per region")
	f.StringVar(&o.packageDir, "package-dir", "", "accept local package files from this directory, in the API and the workers (default: only repository names and http(s) URLs)")
	return cmd
}

// serve runs the bakery until a signal or a failure stops it.
func (a *app) serve(cfg *config.Config, o serveOptions) error {
	ctx, stop := service.SignalContext()
	defer stop()
	log := a.logger(cfg.Context.Debug)
	if o.embedded {
		ns, url, err := startNATS(filepath.Join(cfg.StateDir, "nats"), o.natsListen)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		o.natsURL = url
		log.Info("embedded NATS", "url", url)
	}
	nc, err := nats.Connect(o.natsURL, nats.Name("aminator"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", o.natsURL, err)
	}
	defer nc.Drain()
	store, err := bakery.Open(ctx, nc)
	if err != nil {
		return err
	}
	runner, err := a.bakeRunner(cfg)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(o.regions)+1)
	for _, r := range o.regions {
		w := &bakery.Worker{Store: store, Region: r, Runner: runner, Concurrency: o.workers, Log: log, PackageDir: o.packageDir}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				errs <- err
			}
		}()
		log.Info("worker", "region", r, "concurrency", o.workers)
	}
	if !o.noAPI {
		shutdown, err := startAPI(ctx, cfg, store, o, log, errs)
		if err != nil {
			return err
		}
		defer shutdown()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		stop()
		wg.Wait()
		return err
	}
	wg.Wait()
	return nil
}

// bakeRunner runs each bake in a child of this program, with this
// command's state directory, log directory and configuration file.
func (a *app) bakeRunner(cfg *config.Config) (*bakery.ExecRunner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bakery: %w", err)
	}
	runner := &bakery.ExecRunner{Binary: self, Args: []string{"--state-dir", cfg.StateDir, "--log-dir", cfg.LogDir}}
	if a.configFile != "" {
		runner.Args = append(runner.Args, "--config", a.configFile)
	}
	return runner, nil
}

// startAPI serves the API and dashboard; a failure to serve goes to errs.
// It returns what shuts the server down.
func startAPI(ctx context.Context, cfg *config.Config, store *bakery.Store, o serveOptions, log *slog.Logger, errs chan<- error) (func(), error) {
	api := &bakery.API{Store: store, Log: log, PackageDir: o.packageDir, NewID: func() string { return strings.TrimPrefix(ids.New("x"), "x-") },
		Resolve: func(ctx context.Context, r bakery.Request) (string, error) {
			im, err := service.ResolveIn(ctx, cfg, r.Region, r.Environment, r.BaseRef())
			if err != nil {
				return "", err
			}
			return im.ID, nil
		}}
	srv := &http.Server{Addr: o.listen, Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	log.Info("bakery API and dashboard", "url", "http://"+ln.Addr().String()+"/")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	return func() { srv.Shutdown(context.WithoutCancel(ctx)) }, nil
}

// startNATS starts an embedded NATS server with JetStream.
func startNATS(dir, listen string) (*natsserver.Server, string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "", fmt.Errorf("--embedded-nats-listen %q: %w", listen, err)
	}
	p := -1
	if port != "-1" {
		if _, err := fmt.Sscan(port, &p); err != nil {
			return nil, "", fmt.Errorf("--embedded-nats-listen %q: bad port", listen)
		}
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: host, Port: p, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, "", errors.New("embedded NATS did not start")
	}
	return ns, ns.ClientURL(), nil
}

// bakeryBakeCommand is the child a bakery worker runs for one bake: it
// reads the bakery.Job on standard input and bakes it as `aminate bake`
// does, with the job's settings layered over the configuration as flags
// are, and prints the result as JSON.
func (a *app) bakeryBakeCommand() *cobra.Command {
	return &cobra.Command{
		Use:    bakery.JobCommand,
		Short:  "Run one bakery bake: its job as JSON on standard input (the bakery's workers run it)",
		Hidden: true,
		Args:   a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
			if err != nil {
				return fmt.Errorf("read the bake's job: %w", err)
			}
			var job bakery.Job
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&job); err != nil {
				return usagef("the bake's job on standard input: %v", err)
			}
			if job.Request.Package == "" {
				return usagef("the bake's job names no package")
			}
			settings, tags := job.Settings()
			a.output = "json"
			cfg, err := a.loadConfigWith(cmd, settings, tags)
			if err != nil {
				return err
			}
			// The child re-run in namespaces reads the same job.
			return a.bake(cfg, job.Request.Package, bakeRun{stdin: bytes.NewReader(raw), sha256: job.Request.PackageSHA256})
		},
	}
}
