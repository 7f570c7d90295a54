package egress

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSourceHosts(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/apt/sources.list", "# deb http://commented.example/ x main\ndeb [arch=amd64 signed-by=/k.gpg] http://Deb.Example/debian bookworm main\ndeb-src https://src.example/debian bookworm main\ndeb file:/srv/repo ./\n")
	write("etc/apt/sources.list.d/a.sources", "Types: deb\nURIs: http://one.example/debian https://two.example/x\nSuites: bookworm\n")
	write("etc/apt/sources.list.d/ignored.list.disabled", "deb http://disabled.example/ x main\n")
	write("etc/yum.repos.d/r.repo", "[r]\nbaseurl=http://yum.example/$releasever/\nenabled=1\n")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	want := []string{"deb.example", "one.example", "src.example", "two.example", "yum.example"}
	if got := SourceHosts(root); !reflect.DeepEqual(got, want) {
		t.Errorf("hosts %v, want %v", got, want)
	}
	write("etc/yum.repos.d/m.repo", "[m]\nmetalink=https://mirrors.example/metalink?repo=x\n")
	if got := SourceHosts(root); got[0] != AnyHost {
		t.Errorf("a metalink does not open every host: %v", got)
	}
}

// get sends one proxy request for url over the proxy's socket and returns
// the status line.
func get(t *testing.T, p *Proxy, url string) string {
	c, err := net.Dial("unix", filepath.Join(p.Dir, Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\n\r\n", url)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestProxyRefusesOtherHostsAndLocalAddresses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	p, err := Start(t.TempDir(), []string{"127.0.0.1", "169.254.169.254"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Allowed by name, refused by address: loopback and link-local never.
	if got := get(t, p, up.URL+"/"); !strings.Contains(got, " 502 ") {
		t.Errorf("loopback through the proxy: %q", got)
	}
	if got := get(t, p, "http://169.254.169.254/latest/meta-data/"); !strings.Contains(got, " 502 ") {
		t.Errorf("metadata through the proxy: %q", got)
	}
	if got := get(t, p, "http://not-a-source.example/"); !strings.Contains(got, " 403 ") {
		t.Errorf("a host that is no package source: %q", got)
	}
}
