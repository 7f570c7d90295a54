package bakery

import (
	"context"
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

	"github.com/nats-io/nats.go"
)

// certs writes a CA and a certificate it signed for 127.0.0.1 (server
// and client use) to dir: ca.pem, cert.pem, key.pem.
func certs(t *testing.T, dir, name string) (ca, cert, key string) {
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

// The embedded NATS server takes only the key it generated (0600 in its
// directory): a client without it, or with another, is refused.
func TestEmbeddedNATSNeedsCredentials(t *testing.T) {
	dir := t.TempDir()
	ns, client, err := EmbeddedNATS{Dir: dir, Listen: "127.0.0.1:-1"}.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	st, err := os.Stat(client.Creds)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials %s: %v %v", client.Creds, st.Mode(), err)
	}
	if nc, err := nats.Connect(client.URL); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("a client without credentials: %v", err)
		if nc != nil {
			nc.Close()
		}
	}
	other := filepath.Join(t.TempDir(), "other.nk")
	if _, _, err := userKey(other); err != nil {
		t.Fatal(err)
	}
	if _, err := (ClientOptions{URL: client.URL, Creds: other}).Connect("t"); err == nil {
		t.Error("a client with another key connected")
	}
	nc, err := client.Connect("t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), nc); err != nil {
		t.Errorf("JetStream with the key: %v", err)
	}
	nc.Close()
	found, err := EmbeddedClient(dir)
	if err != nil || found != client {
		t.Errorf("the commands on this host find %+v (%v), want %+v", found, err, client)
	}
}

// Credentials go in a file only it owner can read, never in the URL.
func TestNATSCredentialsStayOutOfArgv(t *testing.T) {
	if _, err := (ClientOptions{URL: "nats://aminator:s3cret@127.0.0.1:4222"}).Connect("t"); err == nil || !strings.Contains(err.Error(), "--nats-creds") {
		t.Errorf("a password in the URL: %v", err)
	}
	loose := filepath.Join(t.TempDir(), "loose.nk")
	userKey(loose)
	os.Chmod(loose, 0o644)
	if _, err := (ClientOptions{URL: "nats://127.0.0.1:1", Creds: loose}).Connect("t"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("credentials others can read: %v", err)
	}
}

// With a certificate, the embedded server speaks only TLS: a plain
// client is refused, one that verifies the certificate connects.
func TestEmbeddedNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := certs(t, dir, "nats")
	ns, client, err := EmbeddedNATS{Dir: dir, Listen: "127.0.0.1:-1", TLSCert: cert, TLSKey: key}.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	opt, _ := nats.NkeyOptionFromSeed(client.Creds)
	plain := strings.Replace(client.URL, "tls://", "nats://", 1)
	if nc, err := nats.Connect(plain, opt); err == nil {
		nc.Close()
		t.Error("a plain client connected")
	}
	nc, err := client.Connect("t")
	if err != nil {
		t.Fatalf("with the server's certificate: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("not TLS")
	}
	nc.Close()
	client.CA = ca
	if nc, err = client.Connect("t"); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	nc.Close()
}

// The API with mutual TLS refuses a client without a certificate its CA
// signed, in the handshake.
func TestAPIMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCert, serverKey := certs(t, dir, "server")
	clientCA, clientCert, clientKey := certs(t, dir, "client")
	_, otherCert, otherKey := certs(t, dir, "other")
	cfg, err := ServerTLS(serverCert, serverKey, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(serverCA)
	pool.AppendCertsFromPEM(pem)
	get := func(certFile, keyFile string) error {
		tc := &tls.Config{RootCAs: pool}
		if certFile != "" {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("", ""); err == nil {
		t.Error("a client without a certificate got through")
	}
	if err := get(otherCert, otherKey); err == nil {
		t.Error("a client with another CA's certificate got through")
	}
	if err := get(clientCert, clientKey); err != nil {
		t.Errorf("the client's certificate: %v", err)
	}
	if _, err := ServerTLS(serverCert, "", ""); err == nil {
		t.Error("TLS without a key")
	}
}
