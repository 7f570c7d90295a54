package mntns

import (
	"reflect"
	"testing"
)

func TestOthersMounts(t *testing.T) {
	info := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 7:2 / /var/lib/aminator/mnt/vol-0123456789abcdef0 rw - ext4 /dev/loop2 rw
41 40 0:5 / /var/lib/aminator/mnt/vol-0123456789abcdef0/proc rw - proc proc rw
42 22 7:3 / /var/tmp/a\040b/state/tmp/boottest-ami-1-99/mnt rw - ext4 /dev/loop3 rw
43 22 7:4 / /var/lib/aminator/data rw - xfs /dev/loop4 rw
44 22 0:6 / /mnt/volumes rw - tmpfs tmpfs rw
`
	got := othersMounts(info)
	want := []string{"/var/lib/aminator/mnt/vol-0123456789abcdef0", "/var/tmp/a b/state/tmp/boottest-ami-1-99/mnt"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
