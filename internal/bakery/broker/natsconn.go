// Package broker reaches the bakery's NATS: a client's connection
// (credentials from a file only), and the embedded NATS server with
// JetStream that aminate serve runs, alone or as a member of a cluster.
package broker

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ClientOptions say how to reach NATS: credentials come from a file
// (a .creds file or an nkey seed), never from the URL or the command line.
type ClientOptions struct {
	URL string
	// Creds is a NATS .creds file (JWT and seed) or an nkey seed file;
	// it must not be readable by group or others.
	Creds string
	// CA verifies the server's TLS certificate; Cert and Key are the
	// client's, for servers that ask for one.
	CA, Cert, Key string
}

// Connect connects to NATS.
func (o ClientOptions) Connect(name string) (*nats.Conn, error) {
	for _, u := range strings.Split(o.URL, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			return nil, fmt.Errorf("NATS URL: %w", err)
		}
		if pu.User != nil {
			return nil, errors.New("the NATS URL carries credentials (they would show in ps and logs): give them in a file with --nats-creds")
		}
	}
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if o.Creds != "" {
		opt, err := credsOption(o.Creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	}
	if o.CA != "" {
		opts = append(opts, nats.RootCAs(o.CA))
	}
	if o.Cert != "" || o.Key != "" {
		opts = append(opts, nats.ClientCert(o.Cert, o.Key))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", o.URL, err)
	}
	return nc, nil
}

// credsOption reads a credentials file: a .creds file or an nkey seed.
func credsOption(file string) (nats.Option, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("NATS credentials %s can be read by others (mode %04o): chmod 600 it", file, st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(file), nil
	}
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials %s: neither a .creds file nor an nkey seed: %w", file, err)
	}
	return opt, nil
}

// EmbeddedNATS is a NATS server with JetStream that the bakery runs
// inside. It takes only clients with the key it generates into
// Dir/aminator.nk (mode 0600) the first time; TLSCert and TLSKey make
// it speak TLS only. Seed, when given, is an nkey seed file the server
// takes instead (the members of a cluster share one); Cluster makes it a
// member of a JetStream cluster.
type EmbeddedNATS struct {
	Dir, Listen     string
	TLSCert, TLSKey string
	Seed            string
	Cluster         Cluster
}

// Files the embedded server leaves in its directory for the commands on
// the same host: the client key and the URL.
const (
	EmbeddedCreds = "aminator.nk"
	EmbeddedURL   = "url"
)

// Start starts the server and says how to connect to it.
func (e EmbeddedNATS) Start() (*natsserver.Server, ClientOptions, error) {
	host, p, err := splitPort(e.Listen)
	if err != nil {
		return nil, ClientOptions{}, fmt.Errorf("embedded NATS listen %q: %w", e.Listen, err)
	}
	if err := os.MkdirAll(e.Dir, 0o700); err != nil {
		return nil, ClientOptions{}, err
	}
	creds, err := e.credsFile()
	if err != nil {
		return nil, ClientOptions{}, err
	}
	pub, seed, err := userKey(creds)
	if err != nil {
		return nil, ClientOptions{}, err
	}
	opts := &natsserver.Options{Host: host, Port: p, JetStream: true, StoreDir: e.Dir, NoSigs: true,
		Nkeys: []*natsserver.NkeyUser{{Nkey: pub}}}
	if err := e.Cluster.apply(opts, seed); err != nil {
		return nil, ClientOptions{}, err
	}
	client := ClientOptions{Creds: creds}
	if e.TLSCert != "" || e.TLSKey != "" {
		if opts.TLSConfig, err = natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: e.TLSCert, KeyFile: e.TLSKey}); err != nil {
			return nil, ClientOptions{}, fmt.Errorf("embedded NATS TLS: %w", err)
		}
		opts.TLS, opts.TLSTimeout = true, 5
		client.CA = e.TLSCert
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, ClientOptions{}, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, ClientOptions{}, errors.New("embedded NATS did not start")
	}
	client.URL = ns.ClientURL()
	if client.CA != "" {
		client.URL = strings.Replace(client.URL, "nats://", "tls://", 1)
	}
	if err := os.WriteFile(filepath.Join(e.Dir, EmbeddedURL), []byte(client.URL+"\n"), 0o600); err != nil {
		ns.Shutdown()
		return nil, ClientOptions{}, err
	}
	return ns, client, nil
}

// credsFile is the seed the server takes: Dir/aminator.nk, which is made
// the first time, or a copy of the shared Seed there (so the commands on
// this host find it as they find a generated one).
func (e EmbeddedNATS) credsFile() (string, error) {
	creds := filepath.Join(e.Dir, EmbeddedCreds)
	if e.Seed == "" {
		return creds, nil
	}
	if _, err := credsOption(e.Seed); err != nil { // mode 0600, a seed
		return "", err
	}
	b, err := os.ReadFile(e.Seed)
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return "", fmt.Errorf("NATS credentials %s: the embedded server takes an nkey seed, not a .creds file", e.Seed)
	}
	tmp := creds + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	if err := os.Rename(tmp, creds); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	return creds, nil
}

// userKey returns the public key of the seed in file and the seed,
// making one the first time.
func userKey(file string) (string, []byte, error) {
	seed, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", nil, err
		}
		if seed, err = kp.Seed(); err != nil {
			return "", nil, err
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("NATS credentials: %w", err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if err := errors.Join(werr, f.Close()); err != nil {
			return "", nil, fmt.Errorf("NATS credentials: %w", err)
		}
	} else if err != nil {
		return "", nil, fmt.Errorf("NATS credentials: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return "", nil, fmt.Errorf("NATS credentials %s: %w", file, err)
	}
	pub, err := kp.PublicKey()
	return pub, bytes.TrimSpace(seed), err
}

// EmbeddedClient says how a command on the bakery's host reaches its
// embedded NATS server: the URL and key it left in dir.
func EmbeddedClient(dir string) (ClientOptions, error) {
	b, err := os.ReadFile(filepath.Join(dir, EmbeddedURL))
	if err != nil {
		return ClientOptions{}, fmt.Errorf("no embedded NATS server has run here (give --nats and --nats-creds): %w", err)
	}
	return ClientOptions{URL: strings.TrimSpace(string(b)), Creds: filepath.Join(dir, EmbeddedCreds)}, nil
}
