// Package fetchtest serves https for download tests: a real TLS server on
// the loopback whose certificate names "localhost", with the pool that
// trusts it, so a test's fetch.Policy can allow the host localhost and
// still see every other loopback address refused.
package fetchtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a running https server.
type Server struct {
	*httptest.Server
	// URL is its base URL by the name localhost (https://localhost:PORT).
	URL string
	// Pool trusts its certificate.
	Pool *x509.CertPool
}

// NewServer serves h over https on 127.0.0.1 until the test ends.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	srv := NewServerOn(t, "127.0.0.1", h)
	srv.URL = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	return srv
}

// NewServerOn serves h over https on another loopback address (such as
// 127.0.0.2) until the test ends; its URL names the address.
func NewServerOn(t testing.TB, ip string, h http.Handler) *Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certificate(t, net.ParseIP(ip))}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &Server{Server: srv, URL: srv.URL, Pool: pool}
}

// certificate is a self-signed certificate for localhost and ip.
func certificate(t testing.TB, ip net.IP) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ConfigFile writes an aminator.yml (for --config) whose download settings
// allow the host localhost and trust this server's certificate, and
// returns its path.
func (s *Server) ConfigFile(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "aminator.yml")
	if err := os.WriteFile(conf, []byte("download:\n  allow: [localhost]\n  ca_file: "+ca+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}
