package mntns

import (
	"reflect"
	"testing"
)

func TestOthersMounts(t *testing.T) {
	points := []string{
		"/",
		"/var/lib/aminator/mnt/vol-0123456789abcdef0",
		"/var/lib/aminator/mnt/vol-0123456789abcdef0/proc",
		"/var/tmp/a b/state/tmp/boottest-ami-1-99/mnt",
		"/var/lib/aminator/data",
		"/var/tmp/other/state/data",
		"/var/tmp/other/state/data/sub",
		"/srv/data",
		"/mnt/volumes",
	}
	got := othersMounts(points, func(p string) bool { return p == "/var/tmp/other/state/data" })
	want := []string{"/var/lib/aminator/mnt/vol-0123456789abcdef0", "/var/tmp/a b/state/tmp/boottest-ami-1-99/mnt", "/var/tmp/other/state/data"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
