// Package bakerytest holds what the bakery's tests share: a store on a
// real NATS server in a temporary directory, a runner that records the
// bakes it runs, a request, and TLS certificates.
package bakerytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// Store starts a NATS server with JetStream in a temporary directory and
// opens the bakery's store on it.
func Store(t *testing.T) *store.Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := store.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	s.Logger = slog.New(slog.DiscardHandler)
	return s
}

// Runner records the bakes it runs, and makes an image of each.
type Runner struct {
	mu  sync.Mutex
	ran []string
}

// Run records the bake; a request for several architectures makes an
// image of each (ami-...1, ami-...2, ...).
func (r *Runner) Run(_ context.Context, rec *bakery.Record, _ io.Writer) ([]bakery.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, rec.ID)
	if arches := rec.Request.Arches(); arches != nil {
		var ims []bakery.Image
		for i, a := range arches {
			ims = append(ims, bakery.Image{ID: fmt.Sprintf("ami-%017d", i+1), Name: "img-" + a, Arch: a})
		}
		return ims, nil
	}
	return []bakery.Image{{ID: "ami-00000000000000001", Name: "img"}}, nil
}

// Ran is the ids of the bakes it ran.
func (r *Runner) Ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// Wait waits for a bake to end and returns its record.
func Wait(t *testing.T, s *store.Store, id string) *bakery.Record {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, _, err := s.Get(context.Background(), id); err == nil && r.Done() {
			return r
		}
	}
	t.Fatalf("bake %s did not end", id)
	return nil
}

// App is a request for package pkg on base ami-00000000000000001 in
// region "local".
func App(pkg string) bakery.Request {
	return bakery.Request{Package: pkg, BaseID: "ami-00000000000000001", Region: "local"}
}

// Certs writes a CA and a certificate it signed for 127.0.0.1 (server
// and client use) to dir: ca.pem, cert.pem, key.pem.
func Certs(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, name+"-"+file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}
