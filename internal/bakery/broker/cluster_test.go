package broker

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeSeed(t *testing.T, file string) {
	t.Helper()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startMember starts one embedded member of the cluster whose routes are given.
func startMember(t *testing.T, dir, name, seed, listen string, routes []string, ca, cert, key string) (*natsserver.Server, ClientOptions, error) {
	t.Helper()
	e := EmbeddedNATS{Dir: filepath.Join(dir, name), Listen: "127.0.0.1:-1", Seed: seed,
		Cluster: Cluster{Name: "bakery", ServerName: name, Listen: listen, Routes: routes, TLSCert: cert, TLSKey: key, CA: ca}}
	ns, client, err := e.Start()
	if err == nil {
		t.Cleanup(ns.Shutdown)
	}
	return ns, client, err
}

// Three embedded members sharing one seed form a JetStream cluster over
// TLS routes: the bakery's streams and buckets get three replicas, and
// a submission still goes through when one member is gone. A member with
// another seed is not let in as a route.
func TestEmbeddedCluster(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.nk")
	writeSeed(t, seed)
	ca, cert, key := bakerytest.Certs(t, dir, "members")
	routes := []string{freePort(t), freePort(t), freePort(t)}
	var servers []*natsserver.Server
	var clients []ClientOptions
	for i, r := range routes {
		ns, c, err := startMember(t, dir, fmt.Sprintf("n%d", i+1), seed, r, routes, ca, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		servers, clients = append(servers, ns), append(clients, c)
	}
	if got := (Cluster{Name: "bakery", Listen: routes[0], Routes: routes}).Size(); got != 3 || DefaultReplicas(got) != 3 {
		t.Errorf("size %d", got)
	}
	nc, err := clients[1].Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ret := store.DefaultRetention()
	ret.Replicas = 3
	var s *store.Store
	for {
		tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
		s, err = store.OpenWith(tctx, nc, ret)
		tcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster's streams: %v", err)
		}
		time.Sleep(time.Second)
	}
	st, err := s.JS.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("queue stream: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	if ClusterSize(nc) != 3 {
		t.Errorf("a client sees %d members", ClusterSize(nc))
	}

	// Another seed: its routes are refused, so it stays alone.
	other := filepath.Join(dir, "other.nk")
	writeSeed(t, other)
	intruder, _, err := startMember(t, dir, "intruder", other, freePort(t), routes, ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := intruder.NumRoutes(); n != 0 {
		t.Errorf("a member with another seed has %d routes", n)
	}

	// One member gone: the other two still take a bake.
	servers[0].Shutdown()
	req := bakery.Request{Package: "hello", BaseName: "base", Region: "east"}
	for {
		_, _, err = s.Submit(ctx, req, "ami-1", "bake-1")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("submit with a member gone: %v", err)
	}
	if r, _, err := s.Get(ctx, "bake-1"); err != nil || r.State != bakery.Queued {
		t.Errorf("record %+v %v", r, err)
	}
}

// Cluster settings that cannot work are refused before anything starts:
// routes without a cluster name, a member without a name, a CA without a
// certificate, a shared seed others can read or that is a .creds file.
func TestEmbeddedClusterRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.nk")
	writeSeed(t, seed)
	loose := filepath.Join(dir, "loose.nk")
	writeSeed(t, loose)
	os.Chmod(loose, 0o644)
	creds := filepath.Join(dir, "user.creds")
	os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n"), 0o600)
	r := freePort(t)
	for name, e := range map[string]EmbeddedNATS{
		"routes without a name": {Seed: seed, Cluster: Cluster{Listen: r, Routes: []string{r}}},
		"no server name":        {Seed: seed, Cluster: Cluster{Name: "c", Listen: r}},
		"a CA alone":            {Seed: seed, Cluster: Cluster{Name: "c", ServerName: "a", Listen: r, CA: "ca.pem"}},
		"a bad route":           {Seed: seed, Cluster: Cluster{Name: "c", ServerName: "a", Listen: r, Routes: []string{"nohost"}}},
		"a loose seed":          {Seed: loose},
		"a .creds file":         {Seed: creds},
	} {
		e.Dir, e.Listen = filepath.Join(dir, "nats-"+name), "127.0.0.1:-1"
		if ns, _, err := e.Start(); err == nil {
			ns.Shutdown()
			t.Errorf("%s: started", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
