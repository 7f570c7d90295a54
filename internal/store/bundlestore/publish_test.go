package bundlestore

import (
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
)

func TestSplitLocation(t *testing.T) {
	for in, want := range map[string][2]string{
		"b/app.manifest.xml":         {"b", "app"},
		"b/pre/fix/app.manifest.xml": {"b/pre/fix", "app"},
		"app.manifest.xml":           {"", ""},
		"b/app.part.0":               {"", ""},
		"b/.manifest.xml":            {"", ""},
	} {
		st, name, err := SplitLocation(in)
		if (want[0] == "") != (err != nil) || st != want[0] || name != want[1] {
			t.Errorf("SplitLocation(%q) = %q, %q, %v", in, st, name, err)
		}
	}
}

func TestInstanceStoreRequest(t *testing.T) {
	in := plugin.ImageRequest{Name: "n", Tags: plugin.Tags{"a": "b"},
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/xvda", SnapshotID: "snap-1"}}}
	r := InstanceStoreRequest(in, "b/n.manifest.xml", "/dev/sda1", []string{"/dev/sdb", "/dev/sdc"})
	if r.ImageLocation != "b/n.manifest.xml" || r.RootDeviceName != "/dev/sda1" || len(r.BlockDevices) != 2 ||
		r.BlockDevices[1].VirtualName != "ephemeral1" || r.BlockDevices[0].SnapshotID != "" ||
		r.Tags[TagLocation] != "b/n.manifest.xml" || r.Tags["a"] != "b" || len(in.Tags) != 1 {
		t.Fatalf("request %+v (input tags %v)", r, in.Tags)
	}
	m := BundleDevices("/dev/sda1", []string{"/dev/sdb"})
	if m["ami"] != "sda1" || m["root"] != "/dev/sda1" || m["ephemeral0"] != "sdb" || len(m) != 3 {
		t.Fatalf("bundle devices %v", m)
	}
}
