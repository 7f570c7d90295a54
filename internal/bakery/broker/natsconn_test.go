package broker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

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
	if _, err := store.Open(context.Background(), nc); err != nil {
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
	ca, cert, key := bakerytest.Certs(t, dir, "nats")
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
