package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster makes the embedded NATS server a member of a JetStream cluster.
// Members authenticate each other's routes with a password derived from
// the nkey seed every member is given (so no secret goes on a command
// line or into a route URL on disk), and speak TLS to each other when
// TLSCert and TLSKey are given, verifying the peer against CA.
type Cluster struct {
	// Name is the cluster's name ("": no cluster); ServerName this
	// member's, unique in the cluster.
	Name, ServerName string
	// Listen is where this member takes routes (host:port); Routes are
	// the members' route addresses (host:port; this member's own may be
	// among them).
	Listen string
	Routes []string
	// TLS between the members.
	TLSCert, TLSKey, CA string
}

// Size is how many members the cluster has, as configured: the distinct
// routes and this member.
func (c Cluster) Size() int {
	if c.Name == "" {
		return 1
	}
	seen := map[string]bool{c.Listen: true}
	for _, r := range c.Routes {
		seen[r] = true
	}
	return len(seen)
}

// routeUser is the user name of the members' routes.
const routeUser = "aminator-route"

// routePassword derives the routes' password from the shared seed.
func routePassword(seed []byte) string {
	sum := sha256.Sum256(append([]byte("aminator NATS cluster route\x00"), seed...))
	return hex.EncodeToString(sum[:])
}

// apply sets the cluster's options on the server's.
func (c Cluster) apply(opts *natsserver.Options, seed []byte) error {
	if c.Name == "" {
		if c.Listen != "" || len(c.Routes) > 0 || c.ServerName != "" {
			return fmt.Errorf("embedded NATS: cluster settings need a cluster name")
		}
		return nil
	}
	if c.ServerName == "" {
		return fmt.Errorf("embedded NATS cluster %s: give this member a server name", c.Name)
	}
	host, port, err := splitPort(c.Listen)
	if err != nil {
		return fmt.Errorf("embedded NATS cluster listen: %w", err)
	}
	pass := routePassword(seed)
	opts.ServerName = c.ServerName
	opts.Cluster = natsserver.ClusterOpts{Name: c.Name, Host: host, Port: port, Username: routeUser, Password: pass}
	for _, r := range c.Routes {
		if _, _, err := splitPort(r); err != nil {
			return fmt.Errorf("embedded NATS route %q: %w", r, err)
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: r, User: url.UserPassword(routeUser, pass)})
	}
	if c.TLSCert == "" && c.TLSKey == "" {
		if c.CA != "" {
			return fmt.Errorf("embedded NATS cluster: a CA without a certificate and key")
		}
		return nil
	}
	tc, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey, CaFile: c.CA, Verify: c.CA != ""})
	if err != nil {
		return fmt.Errorf("embedded NATS cluster TLS: %w", err)
	}
	tc.RootCAs = tc.ClientCAs // a member dialling a route verifies the peer too
	opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, 5
	return nil
}

func splitPort(hostport string) (string, int, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port", hostport)
	}
	return host, p, nil
}

// DefaultReplicas is how many copies JetStream keeps of the bakery's
// streams, buckets and object store on a cluster of n members: three
// (any one member may fail), or n on a smaller cluster.
func DefaultReplicas(n int) int {
	return max(1, min(3, n))
}

// ClusterSize is how many members the cluster a client is connected to
// has, as the server told it (1 outside a cluster).
func ClusterSize(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, s := range nc.Servers() {
		if u, err := url.Parse(s); err == nil {
			seen[strings.ToLower(u.Host)] = true
		}
	}
	return max(1, len(seen))
}
