package cli

import (
	"net"
	"slices"
	"testing"
)

// The API's Host header may name the listener's address, localhost on a
// loopback listener, any local address on a listener on all of them,
// and the names given; nothing else.
func TestAPIHosts(t *testing.T) {
	loop := apiHosts(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8420}, []string{"bakery.example"})
	for _, want := range []string{"bakery.example", "127.0.0.1", "localhost"} {
		if !slices.Contains(loop, want) {
			t.Errorf("loopback: %v lacks %s", loop, want)
		}
	}
	if len(loop) != 3 {
		t.Errorf("loopback: %v", loop)
	}
	all := apiHosts(&net.TCPAddr{IP: net.IPv4zero, Port: 8420}, nil)
	if !slices.Contains(all, "127.0.0.1") || !slices.Contains(all, "localhost") {
		t.Errorf("all addresses: %v", all)
	}
	one := apiHosts(&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8420}, nil)
	if len(one) != 1 || one[0] != "10.1.2.3" {
		t.Errorf("one address: %v", one)
	}
}
