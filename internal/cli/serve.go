package cli

import (
	"bytes"
	"context"
	"crypto/tls"
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

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aminator-go/aminator/internal/bakery"
	bakeryapi "github.com/aminator-go/aminator/internal/bakery/api"
	"github.com/aminator-go/aminator/internal/bakery/broker"
	"github.com/aminator-go/aminator/internal/bakery/store"
	"github.com/aminator-go/aminator/internal/bakery/worker"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/service"
)

// serveOptions are serve's flags.
type serveOptions struct {
	listen, natsListen         string
	nats                       broker.ClientOptions
	embedded, noAPI            bool
	natsTLSCert, natsTLSKey    string
	cluster                    broker.Cluster
	replicas                   int
	ackWait, poolGrace         time.Duration
	regionLimit                int
	regions                    []string
	workers                    int
	packageDir                 string
	tlsCert, tlsKey, clientCA  string
	apiHosts                   []string
	defaultTimeout, maxTimeout time.Duration
	retention                  store.Retention
	limits                     *bakeryapi.Limits
	signingKey, trustFile      string
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

Every API call needs a token (aminate bakery token create); the embedded
NATS server takes only the key it generates into STATE/nats/aminator.nk.

  aminate serve --embedded-nats                 # one host: NATS inside, API on 127.0.0.1:8420, a worker for --region
  aminate serve --nats tls://q:4222 --nats-creds w.creds --nats-ca ca.pem --no-api --worker-region us-west-2   # a worker elsewhere

A cluster of embedded members: every member gets the same nkey seed
(--nats-creds, mode 0600: its clients' key, and what the members'
routes authenticate with), a cluster name, its own server name, and the
members' route addresses; streams and buckets get three replicas.

  aminate serve --embedded-nats --nats-creds seed.nk --embedded-nats-cluster bakery \
    --embedded-nats-server-name a --embedded-nats-listen 0.0.0.0:4222 \
    --embedded-nats-cluster-listen 10.0.0.1:6222 --embedded-nats-routes 10.0.0.1:6222,10.0.0.2:6222,10.0.0.3:6222`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if o.embedded == (o.nats.URL != "") {
				return usagef("give --nats URL or --embedded-nats")
			}
			if err := o.attest(cfg); err != nil {
				return err
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
	natsFlags(f, &o.nats)
	f.BoolVar(&o.embedded, "embedded-nats", false, "run a NATS server with JetStream inside, keeping its data and client key in the state directory")
	f.StringVar(&o.natsListen, "embedded-nats-listen", "127.0.0.1:-1", "where the embedded NATS server listens (host:port; -1 picks a port)")
	f.StringVar(&o.natsTLSCert, "embedded-nats-tls-cert", "", "the embedded NATS server speaks only TLS, with this certificate")
	f.StringVar(&o.natsTLSKey, "embedded-nats-tls-key", "", "and this key")
	clusterFlags(f, &o)
	f.BoolVar(&o.noAPI, "no-api", false, "run only workers")
	f.StringSliceVar(&o.regions, "worker-region", nil, "run workers for these regions (default: --region); none with --worker-region=''")
	f.IntVar(&o.workers, "workers", 2, "bakes at once per region")
	f.StringVar(&o.packageDir, "package-dir", "", "accept local package files from this directory, in the API and the workers (default: only repository names and http(s) URLs)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve the API over TLS with this certificate")
	f.StringVar(&o.tlsKey, "tls-key", "", "and this key")
	f.StringVar(&o.clientCA, "tls-client-ca", "", "require API clients to show a certificate this CA signed (mutual TLS)")
	f.StringSliceVar(&o.apiHosts, "api-host", nil, "a name clients reach the API by (the Host header must be one of these or the listener's address)")
	f.DurationVar(&o.defaultTimeout, "bake-timeout", bakery.DefaultTimeout, "stop a bake (and clean up) after this long unless its request says otherwise")
	f.DurationVar(&o.maxTimeout, "max-bake-timeout", bakery.MaxTimeout, "the longest timeout a request may ask for")
	o.retention = store.DefaultRetention()
	f.DurationVar(&o.retention.Records, "retention", o.retention.Records, "keep bake records and logs this long")
	f.DurationVar(&o.retention.Audit, "audit-retention", o.retention.Audit, "keep the audit log this long")
	f.Int64Var(&o.retention.LogBytes, "log-store-bytes", o.retention.LogBytes, "at most this many bytes of bake logs")
	o.limits = bakeryapi.DefaultLimits()
	f.Float64Var(&o.limits.Rate, "team-rate", o.limits.Rate, "bake requests per minute per team")
	f.Float64Var(&o.limits.Rebakes, "team-rebake-rate", o.limits.Rebakes, "rebake requests per minute per team")
	f.IntVar(&o.limits.MaxQueued, "team-max-queued", o.limits.MaxQueued, "bakes a team may have queued or running")
	f.StringVar(&o.signingKey, "signing-key", "", "sign every image the workers bake with this key: a PEM key file or kms:KEY (default: attest.signing_key, else each worker host's own key)")
	f.StringVar(&o.trustFile, "trust-file", "", "verify every image the workers bake against this trust file (default: attest.trust_file, else STATE/keys/trust.yml)")
	return cmd
}

// serve runs the bakery until a signal or a failure stops it.
func (a *app) serve(cfg *config.Config, o serveOptions) error {
	ctx, stop := service.SignalContext()
	defer stop()
	log := a.logger(cfg.Context.Debug)
	if o.embedded {
		e := broker.EmbeddedNATS{Dir: filepath.Join(cfg.StateDir, "nats"), Listen: o.natsListen, TLSCert: o.natsTLSCert, TLSKey: o.natsTLSKey,
			Seed: o.nats.Creds, Cluster: o.cluster}
		ns, client, err := e.Start()
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		o.nats = client
		log.Info("embedded NATS", "url", client.URL, "creds", client.Creds, "cluster", o.cluster.Name, "server", o.cluster.ServerName)
	}
	o.retention.Logs = o.retention.Records
	nc, err := o.nats.Connect("aminator")
	if err != nil {
		return err
	}
	defer nc.Drain()
	st, err := openStore(ctx, nc, o, log)
	if err != nil {
		return err
	}
	st.Logger = log
	runner, err := a.bakeRunner(cfg)
	if err != nil {
		return err
	}
	if len(o.regions) > 0 {
		keyID, err := service.SigningKeyID(ctx, cfg, log)
		if err != nil {
			return err
		}
		log.Info("workers sign images", "key_id", keyID, "signing_key", signingKeyName(cfg), "trust_file", cfg.Attest.Trust(cfg.StateDir))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(o.regions)+1)
	for _, r := range o.regions {
		w := &worker.Worker{Store: st, Region: r, Runner: runner, Concurrency: o.workers, Log: log, PackageDir: o.packageDir,
			DefaultTimeout: o.defaultTimeout, MaxTimeout: o.maxTimeout, AckWait: o.ackWait,
			PoolGrace: o.poolGrace, RegionLimit: o.regionLimit, Verify: verifier(cfg),
			Pools: func(ctx context.Context) (map[string]int, error) { return service.PooledIn(ctx, cfg, r) }}
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
		shutdown, err := startAPI(ctx, cfg, st, o, log, errs)
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

// openStore opens the bakery's streams and buckets with the replicas
// asked for (0: DefaultReplicas of the cluster's size), waiting for a
// cluster that is still electing its leaders.
func openStore(ctx context.Context, nc *nats.Conn, o serveOptions, log *slog.Logger) (*store.Store, error) {
	ret := o.retention
	if ret.Replicas = o.replicas; ret.Replicas == 0 {
		n := broker.ClusterSize(nc)
		if o.embedded {
			n = o.cluster.Size()
		}
		ret.Replicas = broker.DefaultReplicas(n)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := store.OpenWith(tctx, nc, ret)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("open the bakery's streams (%d replicas): %w", ret.Replicas, err)
			}
			log.Info("bakery store", "replicas", ret.Replicas)
			return st, nil
		}
		log.Info("waiting for the JetStream cluster", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// clusterFlags are the embedded NATS server's cluster settings.
func clusterFlags(f *pflag.FlagSet, o *serveOptions) {
	c := &o.cluster
	f.StringVar(&c.Name, "embedded-nats-cluster", "", "make the embedded NATS server a member of this JetStream cluster (the members share --nats-creds, an nkey seed)")
	f.StringVar(&c.ServerName, "embedded-nats-server-name", "", "this member's name, unique in the cluster")
	f.StringVar(&c.Listen, "embedded-nats-cluster-listen", "", "where this member takes the other members' routes (host:port)")
	f.StringSliceVar(&c.Routes, "embedded-nats-routes", nil, "the members' route addresses (host:port, this member's may be among them)")
	f.StringVar(&c.TLSCert, "embedded-nats-cluster-tls-cert", "", "the members speak TLS to each other, with this certificate")
	f.StringVar(&c.TLSKey, "embedded-nats-cluster-tls-key", "", "and this key")
	f.StringVar(&c.CA, "embedded-nats-cluster-ca", "", "and verify each other's certificate against this CA")
	f.IntVar(&o.replicas, "nats-replicas", 0, "copies of the bakery's streams and buckets in a JetStream cluster (0: 3, or the cluster's size if smaller)")
	f.DurationVar(&o.poolGrace, "pool-grace", 3*time.Second, "a worker without a bake's base in its pool leaves the bake this long to a worker of the region that has it (0: never)")
	f.IntVar(&o.regionLimit, "region-max-running", 0, "bakes running at once in a region over all its workers, as they advertise them (0: no cap but --workers per worker)")
	f.DurationVar(&o.ackWait, "ack-wait", time.Minute, "a bake whose worker sends no heartbeat this long (it died, or lost the network) goes to another worker")
}

// bakeRunner runs each bake in a child of this program, with this
// command's state directory, log directory and configuration file.
func (a *app) bakeRunner(cfg *config.Config) (*worker.ExecRunner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bakery: %w", err)
	}
	runner := &worker.ExecRunner{Binary: self, Args: []string{"--state-dir", cfg.StateDir, "--log-dir", cfg.LogDir},
		SigningKey: cfg.Attest.SigningKey, TrustFile: cfg.Attest.TrustFile}
	if a.configFile != "" {
		runner.Args = append(runner.Args, "--config", a.configFile)
	}
	return runner, nil
}

// startAPI serves the API and dashboard; a failure to serve goes to errs.
// It returns what shuts the server down.
func startAPI(ctx context.Context, cfg *config.Config, st *store.Store, o serveOptions, log *slog.Logger, errs chan<- error) (func(), error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	api := &bakeryapi.API{Store: st, Log: log, PackageDir: o.packageDir, NewID: func() string { return strings.TrimPrefix(ids.New("x"), "x-") },
		DefaultTimeout: o.defaultTimeout, MaxTimeout: o.maxTimeout, Limits: o.limits, Hosts: apiHosts(ln.Addr(), o.apiHosts),
		Resolve: func(ctx context.Context, r bakery.Request) (string, error) { return resolveBases(ctx, cfg, r) },
		Images: func(ctx context.Context, region string) ([]*plugin.Image, error) {
			return service.FindIn(ctx, cfg, region, plugin.Tags{channels.TagRole: channels.RoleFoundation},
				plugin.Tags{channels.TagRole: channels.RoleBase}, plugin.Tags{channels.TagRole: channels.RoleApp})
		}}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	scheme := "http"
	if o.tlsCert != "" || o.tlsKey != "" || o.clientCA != "" {
		if srv.TLSConfig, err = bakeryapi.ServerTLS(o.tlsCert, o.tlsKey, o.clientCA); err != nil {
			ln.Close()
			return nil, usageError{err}
		}
		ln, scheme = tls.NewListener(ln, srv.TLSConfig), "https"
	}
	log.Info("bakery API and dashboard", "url", scheme+"://"+ln.Addr().String()+"/", "hosts", api.Hosts)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	return func() { srv.Shutdown(context.WithoutCancel(ctx)) }, nil
}

// apiHosts are the names the API's Host header may carry: the given ones,
// the listener's address, localhost on a loopback listener, and every
// address of this host on a listener on all of them.
func apiHosts(addr net.Addr, names []string) []string {
	hosts := append([]string(nil), names...)
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return hosts
	}
	hosts = append(hosts, ta.IP.String())
	switch {
	case ta.IP.IsLoopback():
		hosts = append(hosts, "localhost")
	case ta.IP.IsUnspecified():
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, ipn.IP.String())
			}
		}
		hosts = append(hosts, "localhost")
	}
	return hosts
}

// natsFlags are how a command reaches NATS.
func natsFlags(f *pflag.FlagSet, o *broker.ClientOptions) {
	f.StringVar(&o.URL, "nats", "", "NATS server URL (with JetStream); no credentials in it")
	f.StringVar(&o.Creds, "nats-creds", "", "NATS credentials: a .creds file or an nkey seed file, mode 0600")
	f.StringVar(&o.CA, "nats-ca", "", "CA certificate that signed the NATS server's")
	f.StringVar(&o.Cert, "nats-cert", "", "client certificate for NATS (mutual TLS)")
	f.StringVar(&o.Key, "nats-key", "", "its key")
}

// resolveBases finds the base a request names, or for several
// architectures each one's (see bakery.JoinBases), in its region.
func resolveBases(ctx context.Context, cfg *config.Config, r bakery.Request) (string, error) {
	arches := r.Arches()
	if arches == nil {
		im, err := service.ResolveIn(ctx, cfg, r.Region, r.Environment, r.BaseRef())
		if err != nil {
			return "", err
		}
		return im.ID, nil
	}
	ids := map[string]string{}
	for arch, ref := range r.BaseRefs() {
		im, err := service.ResolveIn(ctx, cfg, r.Region, r.Environment, ref)
		if err != nil {
			return "", fmt.Errorf("base image for %s: %w", arch, err)
		}
		ids[arch] = im.ID
	}
	return bakery.JoinBases(arches, ids), nil
}

// bakeryBakeCommand is the child a bakery worker runs for one bake: it
// reads the bakery.QueuedBake on standard input and bakes it as `aminate bake`
// does, with the job's settings layered over the configuration as flags
// are, and prints the result as JSON.
func (a *app) bakeryBakeCommand() *cobra.Command {
	return &cobra.Command{
		Use:    bakery.ChildCommand,
		Short:  "Run one bakery bake: its job as JSON on standard input (the bakery's workers run it)",
		Hidden: true,
		Args:   a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
			if err != nil {
				return fmt.Errorf("read the bake's job: %w", err)
			}
			var job bakery.QueuedBake
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
			return a.bake(cfg, job.Request.Package, bakeRun{stdin: bytes.NewReader(raw), sha256: job.Request.PackageSHA256, bases: job.Bases()})
		},
	}
}
