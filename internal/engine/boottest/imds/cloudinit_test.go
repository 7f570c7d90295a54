package imds

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// crawlScript crawls the service with cloud-init's own EC2 datasource, as
// on an instance that SMBIOS identifies as AWS (IMDSv2 token, API version
// probe, the whole meta-data tree, user data, identity document), and
// prints what cloud-init made of it.
const crawlScript = `
import base64, json, sys, tempfile
from cloudinit import helpers
from cloudinit.sources import DataSourceEc2 as ec2

base, mac = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
sys_cfg = {"datasource": {"Ec2": {"metadata_urls": [base], "max_wait": 10, "timeout": 5}}}
ds = ec2.DataSourceEc2(sys_cfg, None, helpers.Paths({"cloud_dir": tmp, "run_dir": tmp}))
ds._cloud_name = "aws"
crawled = ds.crawl_metadata()
if not crawled:
    sys.exit("cloud-init's crawl found no datasource")
ds.metadata = crawled["meta-data"]
ds.identity = crawled["dynamic"]["instance-identity"]["document"]
net = ec2.convert_ec2_metadata_network_config(ds.metadata["network"], macs_to_nics={mac: "eth0"})
json.dump({
    "api": crawled["_metadata_api_version"],
    "token": bool(ds._api_token),
    "keys": ds.get_public_ssh_keys(),
    "instance": ds.get_instance_id(),
    "zone": ds.availability_zone,
    "region": ds.region,
    "userdata": base64.b64encode(crawled["user-data"]).decode(),
    "nic": net["ethernets"]["eth0"],
}, sys.stdout)
`

// TestCloudInitCrawl runs when /usr/bin/python3 can import cloud-init
// (Debian's cloud-init package, or PYTHONPATH set to the
// usr/lib/python3/dist-packages of its unpacked .deb).
func TestCloudInitCrawl(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import cloudinit.sources.DataSourceEc2").Run(); err != nil {
		t.Skipf("cloud-init is not importable by %s (%v): apt-get install cloud-init, or set PYTHONPATH to an unpacked cloud-init .deb's usr/lib/python3/dist-packages", python, err)
	}
	c := testConfig()
	base := serve(t, c)
	out, err := exec.Command(python, "-c", crawlScript, base, c.MAC).Output()
	if err != nil {
		t.Fatalf("cloud-init crawl: %v\n%s", err, stderrOf(err))
	}
	var got struct {
		API, Instance, Zone, Region string
		Token                       bool
		Keys                        []string
		UserData                    []byte
		NIC                         map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.API != "2021-03-23" || !got.Token || got.Instance != c.InstanceID || got.Zone != c.AvailabilityZone || got.Region != "eu-west-1" {
		t.Errorf("cloud-init saw %+v", got)
	}
	if len(got.Keys) != 1 || got.Keys[0] != c.PublicKey {
		t.Errorf("cloud-init found the keys %q, want [%q]", got.Keys, c.PublicKey)
	}
	if string(got.UserData) != string(c.UserData) {
		t.Errorf("cloud-init read the user data %q", got.UserData)
	}
	if got.NIC["dhcp4"] != true || got.NIC["dhcp6"] == true {
		t.Errorf("cloud-init's network config for the NIC: %v", got.NIC)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
