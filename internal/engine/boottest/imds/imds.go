// Package imds serves the EC2 instance metadata service to a test VM, so an
// image boots under qemu the way it boots on EC2: cloud-init's EC2
// datasource finds its instance id, placement, network interface, SSH key
// and user data at 169.254.169.254 (see package netns for how the guest
// reaches that address).
//
// The answers are AWS's own mock, github.com/aws/amazon-ec2-metadata-mock,
// used as a library (its handlers, token flow, listings and defaults),
// configured for one quiet on-demand instance, behind a thin front that
// covers where the mock and real IMDS differ:
//   - the mock answers under /latest/ only, while cloud-init asks dated API
//     versions (/2009-04-04/..., /2021-03-23/...): any /YYYY-MM-DD/ (and
//     /1.0/) prefix is served as /latest/, and GET / lists versions;
//   - the mock lists public-keys/ as "0/" where IMDS answers "0=KEYNAME"
//     (cloud-init then finds no key): the front answers the two listings;
//   - the mock's default mode announces a spot interruption at once; here
//     it serves scheduled events only, with one completed event, and every
//     client may read them (the mock answers 404 past its second client IP,
//     and a listed path that answers 404 makes cloud-init drop the whole
//     datasource).
//
// Paths a plain EBS-backed instance without a public address, an instance
// profile or IPv6 does not have are left out (see dropAbsent). IMDSv2 (PUT
// /latest/api/token, then the token header) and IMDSv1 (plain GETs) both
// work, as on an instance whose tokens are optional.
//
// Isolation: the mock keeps its configuration, tokens and listing caches in
// package variables (one configuration per process, unsynchronised), and it
// logs every request through the standard logger. So each Server runs it in
// a child process: this program re-executed from /proc/self/exe, which this
// package's init turns into the server (no hook in main is needed; the
// child runs the program's package initialisers, never its main). The
// child gets its configuration on stdin and its listeners as inherited
// descriptors, runs in /, with HOME pointing nowhere and no environment
// from this process; its log goes to Config.Log, its standard output
// nowhere. The mock's command-line layer (cobra flags, the global viper,
// config files in $HOME or the working directory) is never used: its
// defaults are read into a private viper instance, from the JSON it embeds.
// Several Servers (one per VM) can run at once.
//
// One side effect remains in this process: the mock's config package looks
// up $HOME when it is initialised and logs a warning on standard error if
// $HOME is unset.
package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Config describes the instance. Empty fields keep the mock's defaults
// (instance i-1234567890abcdef0, an m4.xlarge in us-east-1a), except as said
// below.
type Config struct {
	InstanceID       string // i-...
	InstanceType     string // e.g. t3.micro
	ImageID          string // ami-...
	Region           string // derived from AvailabilityZone when empty
	AvailabilityZone string // Region + "a" when empty
	// Hostname is the private DNS name (hostname, local-hostname); when
	// empty it is derived from LocalIPv4 as on EC2: ip-10-0-2-15.ec2.internal
	// in us-east-1, ip-10-0-2-15.REGION.compute.internal elsewhere.
	Hostname string
	// LocalIPv4 is the address the VM gets by DHCP (qemu user networking:
	// 10.0.2.15); the interface's subnet and VPC blocks are its /24.
	LocalIPv4 string
	// MAC is the VM NIC's address: cloud-init picks the interface whose MAC
	// is in network/interfaces/macs/.
	MAC          string
	Architecture string // x86_64 or arm64, in the instance identity document
	KeyName      string // required with PublicKey
	PublicKey    string // one OpenSSH authorized_keys line; none when empty
	UserData     []byte // /latest/user-data; 404 when empty, as on EC2

	// Log receives the mock's log of requests; nil discards it.
	Log io.Writer `json:"-"`
}

// Server is one running metadata service.
type Server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // the child's exit, once done is closed

	closeOnce sync.Once
	closeErr  error
}

// childEnv marks the re-executed child (see init in child.go).
const childEnv = "_AMINATOR_IMDS"

// startTimeout bounds the child's start-up, up to its first readiness line.
const startTimeout = 30 * time.Second

// Start serves the metadata of c on the listeners (each a *net.TCPListener
// or *net.UnixListener, e.g. from netns.NS.Listen on 169.254.169.254:80 and
// [fd00:ec2::254]:80) until Close. The Server serves its own copies of the
// listeners; the caller still owns and closes them. It returns once the
// service answers.
func Start(c Config, listeners ...net.Listener) (*Server, error) {
	c = c.filled()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("imds: %w", err)
	}
	if len(listeners) == 0 {
		return nil, errors.New("imds: no listener")
	}
	files, err := listenerFiles(listeners)
	if err != nil {
		return nil, fmt.Errorf("imds: %w", err)
	}
	defer closeAll(files)
	s, err := start(c, files)
	if err != nil {
		return nil, fmt.Errorf("imds: start the metadata service: %w", err)
	}
	return s, nil
}

// start runs the child with the listeners' descriptors, sends it c and
// waits for its readiness line.
func start(c Config, files []*os.File) (*Server, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	cmd := childCommand(c.Log, append([]*os.File{readyW}, files...))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	err = cmd.Start()
	readyW.Close() // the child holds its own copy
	if err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	go s.wait()
	if err := s.handshake(stdin, readyR, envelope{Config: c, Listeners: len(files)}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// childCommand is this program re-executed as the server (see child.go);
// extra become its descriptors 3, 4, ...
func childCommand(log io.Writer, extra []*os.File) *exec.Cmd {
	return &exec.Cmd{
		Path:       "/proc/self/exe", // this program, even if its file was replaced
		Args:       []string{"aminator-imds"},
		Env:        []string{childEnv + "=1", "HOME=/nonexistent"},
		Dir:        "/",
		Stderr:     log, // nil: the null device, as stdout
		ExtraFiles: extra,
	}
}

// handshake sends the child its configuration and reads its readiness line:
// "ok", or why it could not start.
func (s *Server) handshake(stdin io.Writer, ready *os.File, env envelope) error {
	if err := json.NewEncoder(stdin).Encode(env); err != nil {
		return fmt.Errorf("send the configuration: %w", err)
	}
	ready.SetReadDeadline(time.Now().Add(startTimeout))
	line, err := io.ReadAll(io.LimitReader(ready, 4096))
	switch msg := strings.TrimSpace(string(line)); {
	case msg == "ok":
		return nil
	case msg != "":
		return errors.New(msg)
	case err != nil:
		return fmt.Errorf("wait for the service: %w", err)
	default:
		<-s.done
		return fmt.Errorf("the service exited before it was ready: %v", s.err)
	}
}

// wait reaps the child.
func (s *Server) wait() {
	s.err = s.cmd.Wait()
	close(s.done)
}

// Close stops the service. It reports an error if the service had stopped
// by itself before.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.stop() })
	return s.closeErr
}

func (s *Server) stop() error {
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("imds: the metadata service had stopped: %w", s.err)
		}
		return errors.New("imds: the metadata service had stopped")
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
	return nil
}

// envelope is what the child reads on its standard input.
type envelope struct {
	Config    Config
	Listeners int // descriptors 4, 5, ...
}

// listenerFiles returns a duplicate descriptor of each listener.
func listenerFiles(listeners []net.Listener) ([]*os.File, error) {
	var files []*os.File
	for _, l := range listeners {
		fl, ok := l.(interface{ File() (*os.File, error) })
		if !ok {
			closeAll(files)
			return nil, fmt.Errorf("listener %T on %s has no descriptor to pass on", l, l.Addr())
		}
		f, err := fl.File()
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("listener on %s: %w", l.Addr(), err)
		}
		files = append(files, f)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// filled derives the empty fields that follow from others.
func (c Config) filled() Config {
	if c.Region == "" && len(c.AvailabilityZone) > 1 {
		c.Region = c.AvailabilityZone[:len(c.AvailabilityZone)-1]
	}
	if c.AvailabilityZone == "" && c.Region != "" {
		c.AvailabilityZone = c.Region + "a"
	}
	if c.Hostname == "" && c.LocalIPv4 != "" {
		c.Hostname = ec2Hostname(c.LocalIPv4, c.Region)
	}
	c.PublicKey = strings.TrimSpace(c.PublicKey)
	return c
}

// ec2Hostname is EC2's IP-based private DNS name.
func ec2Hostname(ip, region string) string {
	name := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if region == "" || region == "us-east-1" {
		return name + ".ec2.internal"
	}
	return name + "." + region + ".compute.internal"
}

// validate checks the fields the mock would take as they are.
func (c Config) validate() error {
	if c.MAC != "" {
		if hw, err := net.ParseMAC(c.MAC); err != nil || len(hw) != 6 {
			return fmt.Errorf("MAC %q is not an Ethernet address", c.MAC)
		}
	}
	if c.LocalIPv4 != "" {
		if a, err := netip.ParseAddr(c.LocalIPv4); err != nil || !a.Is4() {
			return fmt.Errorf("LocalIPv4 %q is not an IPv4 address", c.LocalIPv4)
		}
	}
	if c.PublicKey != "" && c.KeyName == "" {
		return errors.New("a PublicKey needs its KeyName (IMDS lists keys as 0=KEYNAME)")
	}
	if strings.ContainsAny(c.PublicKey+c.KeyName, "\r\n") {
		return errors.New("PublicKey and KeyName must be one line each")
	}
	return nil
}
