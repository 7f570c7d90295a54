package naming

import (
	"strings"
	"testing"
	"time"
)

func TestSplitVersion(t *testing.T) {
	for _, tc := range []struct{ in, v, r string }{
		{"2.10-3", "2.10", "3"},
		{"1:2.5-3", "2.5", "3"},
		{"1.0", "1.0", "0"},
		{"2:1.2.3-4-5", "1.2.3", "4-5"}, // split at the first '-', as the original
		{"7.0.1+dfsg-1ubuntu2", "7.0.1+dfsg", "1ubuntu2"},
	} {
		if v, r := SplitVersion(tc.in); v != tc.v || r != tc.r {
			t.Errorf("SplitVersion(%q) = %q, %q; want %q, %q", tc.in, v, r, tc.v, tc.r)
		}
	}
}

func TestNames(t *testing.T) {
	f := Fields{Name: "app", Version: "1.0", Release: "2", Arch: "x86_64", Suffix: "202611260000", StoreType: "ebs"}
	if got := ImageName("", f); got != "app-1.0-2-x86_64-202611260000-ebs" {
		t.Errorf("default name %q", got)
	}
	if got := ImageName("my app:v1", f); got != "my_app_v1-202611260000" {
		t.Errorf("given name %q", got)
	}
	if got := Sanitize("a b!c(d).e-f/g_h~"); got != "a_b_c(d).e-f/g_h_" {
		t.Errorf("sanitize %q", got)
	}
	if got := len(Sanitize(string(make([]byte, 300)))); got != 128 {
		t.Errorf("long names are cut to 128, got %d", got)
	}
	if AppVersion(f) != "app-1.0-2" {
		t.Error(AppVersion(f))
	}
	ts := time.Date(2026, 11, 26, 7, 8, 9, 0, time.UTC)
	if Suffix(ts) != "202611260708" || CreationTime(ts) != "2026-11-26 07:08:09 UTC" {
		t.Error(Suffix(ts), CreationTime(ts))
	}
	if d := Description("app-1.0-2", "x86_64", "base", "ami-1", "v"); d != "name=app-1.0-2, arch=x86_64, ancestor_name=base, ancestor_id=ami-1, ancestor_version=v" {
		t.Error(d)
	}
}

func TestToolTags(t *testing.T) {
	for key, scope := range map[string]string{"creator": ScopeBake, "pushed:us-east-1": ScopeBake, "aminator:local_image": ScopeFoundation,
		"base_ami_id": ScopeBake, "release": ScopeFoundation, "host": ScopeBake} {
		if _, ok := Reserved(key, scope); !ok {
			t.Errorf("%s is not reserved in scope %q", key, scope)
		}
	}
	for key, scope := range map[string]string{"team": ScopeBake, "release": ScopeBake, "host": ScopeFoundation, "Creator": ScopeBake, "pushed": ScopeBake} {
		if _, ok := Reserved(key, scope); ok {
			t.Errorf("%s is reserved in scope %q", key, scope)
		}
	}
	err := CheckUserTags(map[string]string{"team": "a", "role": "app", "creator": "x"}, ScopeBake)
	if err == nil || err.Error() != `tag "creator" is set by aminator; use -c/--creator instead` {
		t.Errorf("CheckUserTags: %v", err)
	}
	if got := LaterTags(); strings.Join(got, ",") != "channel,boot_test,boot_test_time" {
		t.Errorf("LaterTags %v", got)
	}
}
