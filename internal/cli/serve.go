package cli

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/aminator-go/aminator/internal/bake"
	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/plugin"
)

func (a *app) serveCommand() *cobra.Command {
	var (
		listen, natsURL, natsListen string
		embedded, noAPI             bool
		regions                     []string
		workers                     int
		packageDir                  string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bakery: an HTTP API and dashboard, and workers that take bakes off a NATS JetStream queue",
		Long: `Run the bakery service. API servers take bake requests over HTTP and put
them on a NATS JetStream work queue per region; workers (here: one set per
--worker-region) take them off and run each as a child aminate bake. Every
bake's record and log live in JetStream, so API servers and workers in
several regions share them. Identical requests are answered from what is
running or done (the resolved base image is part of the identity), and
concurrent identical requests collapse into one bake.

  aminate serve --embedded-nats                 # one host: NATS inside, API on 127.0.0.1:8420, a worker for --region
  aminate serve --nats nats://q:4222 --no-api --worker-region us-west-2   # a worker in another region`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if embedded == (natsURL != "") {
				return usagef("give --nats URL or --embedded-nats")
			}
			if !cmd.Flags().Changed("worker-region") {
				regions = []string{cfg.Context.Region}
			}
			if os.Geteuid() == 0 && cfg.Environments[cfg.Context.Environment][plugin.KindCloud] == "local" {
				// Before the API resolves bases in the local cloud: its store, mounted or set up.
				if err := a.prepareStore(cfg); err != nil {
					return err
				}
			}
			ctx, stop := signalContext()
			defer stop()
			log := a.logger(cfg.Context.Debug)
			if embedded {
				ns, url, err := startNATS(filepath.Join(cfg.StateDir, "nats"), natsListen)
				if err != nil {
					return err
				}
				defer ns.Shutdown()
				natsURL = url
				log.Info("embedded NATS", "url", url)
			}
			nc, err := nats.Connect(natsURL, nats.Name("aminator"), nats.MaxReconnects(-1))
			if err != nil {
				return fmt.Errorf("connect to NATS %s: %w", natsURL, err)
			}
			defer nc.Drain()
			store, err := bakery.Open(ctx, nc)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			runner := &bakery.ExecRunner{Binary: self, Args: []string{"--state-dir", cfg.StateDir, "--log-dir", cfg.LogDir}}
			if a.configFile != "" {
				runner.Args = append(runner.Args, "--config", a.configFile)
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(regions)+1)
			for _, r := range regions {
				w := &bakery.Worker{Store: store, Region: r, Runner: runner, Concurrency: workers, Log: log}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := w.Run(ctx); err != nil {
						errs <- err
					}
				}()
				log.Info("worker", "region", r, "concurrency", workers)
			}
			if !noAPI {
				api := &bakery.API{Store: store, Log: log, PackageDir: packageDir, NewID: func() string { return strings.TrimPrefix(ids.New("x"), "x-") },
					Resolve: func(ctx context.Context, r bakery.Request) (string, error) { return resolveBase(ctx, cfg, r) }}
				srv := &http.Server{Addr: listen, Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return err
				}
				log.Info("bakery API and dashboard", "url", "http://"+ln.Addr().String()+"/")
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						errs <- err
					}
				}()
				defer srv.Shutdown(context.WithoutCancel(ctx))
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
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8420", "address of the API and dashboard")
	f.StringVar(&natsURL, "nats", "", "NATS server URL (with JetStream)")
	f.BoolVar(&embedded, "embedded-nats", false, "run a NATS server with JetStream inside, keeping its data in the state directory")
	f.StringVar(&natsListen, "embedded-nats-listen", "127.0.0.1:-1", "where the embedded NATS server listens (host:port; -1 picks a port)")
	f.BoolVar(&noAPI, "no-api", false, "run only workers")
	f.StringSliceVar(&regions, "worker-region", nil, "run workers for these regions (default: --region); none with --worker-region=''")
	f.IntVar(&workers, "workers", 2, "bakes at once per region")
	f.StringVar(&packageDir, "package-dir", "", "accept local package files from this directory (default: only repository names and http(s) URLs)")
	return cmd
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

// resolveBase finds a request's base image in its region and environment.
func resolveBase(ctx context.Context, cfg *config.Config, r bakery.Request) (string, error) {
	c := *cfg
	c.Context.Region = r.Region
	if r.Environment != "" {
		if _, ok := cfg.Environments[r.Environment]; !ok {
			return "", fmt.Errorf("no environment %q", r.Environment)
		}
		c.Context.Environment = r.Environment
	}
	env, err := bake.NewEnvironment(&c, slogDiscard())
	if err != nil {
		return "", err
	}
	defer env.Close()
	var im *plugin.Image
	switch {
	case r.BaseID != "":
		im, err = env.Cloud.Image(ctx, plugin.ImageQuery{ID: r.BaseID})
	case r.BaseLabel != "":
		im, err = channels.Resolve(ctx, env.Cloud, r.BaseName, r.BaseLabel)
	default:
		im, err = findImage(ctx, env.Cloud, r.BaseName)
	}
	if err != nil {
		return "", err
	}
	return im.ID, nil
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
