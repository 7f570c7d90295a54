package imds

import (
	"io"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/netns"
)

// TestServesInsideNamespace serves on EC2's addresses in a VM's namespace
// (see package netns), where a guest reaches them through qemu.
func TestServesInsideNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace needs root")
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var listeners []net.Listener
	for _, addr := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80"} {
		l, err := ns.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		listeners = append(listeners, l)
	}
	s, err := Start(testConfig(), listeners...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: ns.Dial}}
	for _, base := range []string{"http://169.254.169.254", "http://[fd00:ec2::254]"} {
		resp, err := client.Get(base + "/latest/meta-data/instance-id")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "i-0aminator0000001" {
			t.Errorf("%s: %d %q", base, resp.StatusCode, body)
		}
	}
}
