package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	_ "github.com/aminator-go/aminator/internal/engine/boottest/imds/hush" // before the mock's init
)

// The child's descriptors, after stdin, stdout and stderr (see start).
const (
	readyFD     = 3 // its readiness line
	firstListen = 4 // its listeners
)

// init turns the process Start re-executed into the server; in any other
// process it does nothing. The child never returns from here, so the rest
// of the program (its main) never runs in it.
func init() {
	log.SetOutput(os.Stderr) // see package hush
	if os.Getenv(childEnv) != "1" {
		return
	}
	if err := serveChild(); err != nil {
		fmt.Fprintf(os.Stderr, "aminator-imds: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveChild reads the configuration, reports readiness and serves until it
// is killed (Close) or its standard input ends (the parent died).
func serveChild() error {
	ready := os.NewFile(readyFD, "ready")
	stdin := json.NewDecoder(os.Stdin)
	listeners, handler, err := setUpChild(stdin)
	if err != nil {
		fmt.Fprintln(ready, err)
		return err
	}
	fmt.Fprintln(ready, "ok")
	ready.Close()
	stop := make(chan error, len(listeners)+1)
	for _, l := range listeners {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
		go func() { stop <- fmt.Errorf("serve on %s: %w", l.Addr(), srv.Serve(l)) }()
	}
	go func() {
		io.Copy(io.Discard, io.MultiReader(stdin.Buffered(), os.Stdin))
		stop <- nil
	}()
	return <-stop
}

// setUpChild decodes the envelope, opens the inherited listeners and builds
// the handler.
func setUpChild(stdin *json.Decoder) ([]net.Listener, http.Handler, error) {
	var env envelope
	if err := stdin.Decode(&env); err != nil {
		return nil, nil, fmt.Errorf("read the configuration: %w", err)
	}
	if env.Listeners < 1 {
		return nil, nil, errors.New("no listener was passed")
	}
	listeners := make([]net.Listener, env.Listeners)
	for i := range listeners {
		f := os.NewFile(uintptr(firstListen+i), "listener")
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("listener %d: %w", i, err)
		}
		listeners[i] = l
	}
	m, err := mockConfig(env.Config, time.Now())
	if err != nil {
		return nil, nil, err
	}
	keyName := "" // no key: the mock answers 404 for public-keys/
	if env.Config.PublicKey != "" {
		keyName = env.Config.KeyName
	}
	return listeners, front(mockHandler(m), keyName), nil
}
