package imds

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"time"

	cfg "github.com/aws/amazon-ec2-metadata-mock/pkg/config"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/config/defaults"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/dynamic"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/events"
	eventscfg "github.com/aws/amazon-ec2-metadata-mock/pkg/mock/events/config"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/handlers"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/imdsv2"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/static"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/mock/userdata"
	"github.com/aws/amazon-ec2-metadata-mock/pkg/server"
	"github.com/gorilla/mux"
	"github.com/spf13/viper"
)

// mockConfig is the mock's configuration for the instance c: its defaults
// with c's values, only the paths such an instance has, and no pending
// event. It touches no global state.
func mockConfig(c Config, now time.Time) (cfg.Config, error) {
	m, err := mockDefaults()
	if err != nil {
		return m, err
	}
	setInstance(&m.Metadata.Values, c)
	setNetwork(&m.Metadata, c)
	setIdentity(&m.Dynamic.Values, c, now)
	setKeyAndUserData(&m, c)
	dropAbsent(&m.Metadata.Paths)
	beQuiet(&m, now)
	return m, nil
}

// mockDefaults reads the defaults the mock embeds into a private viper
// instance (the mock's own loader uses the global one, the environment and
// files in $HOME).
func mockDefaults() (cfg.Config, error) {
	var m cfg.Config
	v := viper.New()
	v.SetConfigType("json")
	if err := v.ReadConfig(bytes.NewReader(defaults.GetDefaultValues())); err != nil {
		return m, fmt.Errorf("read the mock's defaults: %w", err)
	}
	if err := v.Unmarshal(&m); err != nil {
		return m, fmt.Errorf("decode the mock's defaults: %w", err)
	}
	return m, nil
}

// set sets *dst to v unless v is empty.
func set(v string, dst ...*string) {
	if v == "" {
		return
	}
	for _, d := range dst {
		*d = v
	}
}

func setInstance(v *cfg.Values, c Config) {
	set(c.InstanceID, &v.InstanceID)
	set(c.InstanceType, &v.InstanceType)
	set(c.ImageID, &v.AmiID)
	set(c.Region, &v.PlacementRegion)
	set(c.AvailabilityZone, &v.PlacementAvailabilityZone)
	set(c.Hostname, &v.Hostname, &v.LocalHostName, &v.MacLocalHostname)
}

// setNetwork sets the interface's addresses; the MAC is also in the
// interface's paths (network/interfaces/macs/MAC/...).
func setNetwork(md *cfg.Metadata, c Config) {
	v := &md.Values
	if c.MAC != "" {
		mac := strings.ToLower(c.MAC)
		replaceInPaths(&md.Paths, v.Mac, mac)
		set(mac, &v.Mac, &v.MacMac)
	}
	if c.LocalIPv4 != "" {
		block := netip.PrefixFrom(netip.MustParseAddr(c.LocalIPv4), 24).Masked().String()
		set(c.LocalIPv4, &v.LocalIpv4, &v.MacLocalIpv4s)
		set(block, &v.MacSubnetIpv4CidrBlock, &v.MacVpcIpv4CidrBlock, &v.MacVpcIpv4CidrBlocks)
	}
}

// replaceInPaths replaces old by new in every path.
func replaceInPaths(p *cfg.Paths, old, new string) {
	fields := reflect.ValueOf(p).Elem()
	for i := range fields.NumField() {
		if f := fields.Field(i); f.Kind() == reflect.String {
			f.SetString(strings.ReplaceAll(f.String(), old, new))
		}
	}
}

// setIdentity fills the instance identity document in.
func setIdentity(v *cfg.DynamicValues, c Config, now time.Time) {
	doc := &v.InstanceIdentityDocument
	set(c.InstanceID, &doc.InstanceId)
	set(c.InstanceType, &doc.InstanceType)
	set(c.ImageID, &doc.ImageId)
	set(c.Region, &doc.Region)
	set(c.AvailabilityZone, &doc.AvailabilityZone)
	set(c.LocalIPv4, &doc.PrivateIp)
	set(c.Architecture, &doc.Architecture)
	doc.PendingTime = now.UTC().Format(time.RFC3339)
}

// setKeyAndUserData serves the key and the user data, or drops their paths
// when there are none.
func setKeyAndUserData(m *cfg.Config, c Config) {
	m.Metadata.Values.PublicKey = c.PublicKey
	if c.PublicKey == "" {
		m.Metadata.Paths.PublicKey = ""
	}
	m.Userdata.Values.Userdata = base64.StdEncoding.EncodeToString(c.UserData)
	if len(c.UserData) == 0 {
		m.Userdata.Paths.Userdata = ""
	}
}

// dropAbsent removes the mock's paths that a plain on-demand, EBS-backed
// instance in a private subnet has not. A path with no value is not served
// nor listed.
func dropAbsent(p *cfg.Paths) {
	for _, path := range []*string{
		&p.KernelID, &p.RamdiskID, // HVM instances have none
		&p.ProductCodes, // Marketplace images only
		// Only the root volume: ephemeral0 and swap would send cloud-init's
		// mounts module looking for /dev/sdb.
		&p.BlockDeviceMappingEbs, &p.BlockDeviceMappingEphemeral, &p.BlockDeviceMappingSwap,
		&p.IamInformation, &p.IamSecurityCredentialsRole, &p.IamSecurityCredentials, // no instance profile
		&p.ElasticInferenceAssociations, &p.ElasticInferenceAccelerator, // a retired service
		// No public address: the VM's network is private.
		&p.PublicIpv4, &p.PublicHostName, &p.MacPublicHostname, &p.MacPublicIpv4s, &p.MacIpv4Associations,
		// No IPv6 on the interface: ipv6s would make cloud-init wait for DHCPv6.
		&p.MacIpv6Associations, &p.MacSubnetIpv6CidrBlocks, &p.MacVpcIpv6CidrBlocks,
		// The default zone id is us-east-1's; the others are for placement
		// groups and dedicated hosts.
		&p.PlacementAvailabilityZoneID, &p.PlacementGroupName, &p.PlacementHostID, &p.PlacementPartitionNumber,
		&p.TagsInstanceName, &p.TagsInstanceTest, // tags in metadata are off by default
	} {
		*path = ""
	}
}

// beQuiet configures a quiet instance: the scheduled-events mode (no spot
// interruption, no rebalance recommendation, no ASG lifecycle) with one
// event completed a week ago, available at once to every client (the
// mock's default answers 404 to a third client address).
func beQuiet(m *cfg.Config, now time.Time) {
	m.MockDelayInSec, m.MockTriggerTime = 0, ""
	m.MockIPCount = -1
	m.Imdsv2Required = false
	start := now.UTC().Add(-7 * 24 * time.Hour)
	m.EventsConfig = eventscfg.Config{
		EventCode:         "system-reboot",
		EventState:        "completed",
		NotBefore:         start.Format(time.RFC3339),
		NotBeforeDeadline: start.Add(time.Hour).Format(time.RFC3339),
		NotAfter:          start.Add(2 * time.Hour).Format(time.RFC3339),
	}
}

// mockHandler serves m with the mock's own handlers, registered the way its
// events command registers them, on a router of our own: the mock's router
// is a package variable that only its ListenAndServe can serve, on an
// address it listens on itself. It fills the mock's package-level tables,
// so it runs once per process (the child's).
func mockHandler(m cfg.Config) http.Handler {
	static.RegisterHandlers(m) // these fill the handlers' tables (and the unused global router)
	dynamic.RegisterHandlers(m)
	userdata.RegisterHandlers(m)
	events.SetConfig(m)

	r := mux.NewRouter()
	var routes []string
	handle := func(h server.HandlerType, paths ...string) {
		for _, p := range paths {
			if p != "" {
				r.HandleFunc(p, h)
				routes = append(routes, p)
			}
		}
	}
	handle(handlers.ListRoutesHandler, "/", "/latest", static.ServicePath, dynamic.ServicePath)
	handle(events.Handler, m.Metadata.Paths.Events)
	handle(imdsv2.GenerateToken, "/latest/api/token")
	handle(static.Handler, served(m.Metadata.Paths, m.Metadata.Values)...)
	handle(dynamic.Handler, served(m.Dynamic.Paths, m.Dynamic.Values)...)
	handle(userdata.Handler, served(m.Userdata.Paths, m.Userdata.Values)...)
	r.PathPrefix("/").HandlerFunc(handlers.CatchAllHandler)
	server.Routes = routes // what the listings are made of
	return &serialized{h: r}
}

// served lists the paths the mock's RegisterHandlers serve: those with a
// value field of the same name, and not empty.
func served(paths, values any) []string {
	p, v := reflect.ValueOf(paths), reflect.ValueOf(values)
	var list []string
	for i := range p.NumField() {
		name := p.Type().Field(i).Name
		if path := p.Field(i).String(); path != "" && v.FieldByName(name).IsValid() {
			list = append(list, path)
		}
	}
	return list
}

// serialized lets one request at a time into the mock, whose handlers share
// package variables without a lock (the token map, the response being
// written, the listing caches).
type serialized struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *serialized) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.ServeHTTP(w, r)
}
