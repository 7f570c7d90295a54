package api

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
)

// The API with mutual TLS refuses a client without a certificate its CA
// signed, in the handshake.
func TestAPIMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCert, serverKey := bakerytest.Certs(t, dir, "server")
	clientCA, clientCert, clientKey := bakerytest.Certs(t, dir, "client")
	_, otherCert, otherKey := bakerytest.Certs(t, dir, "other")
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
