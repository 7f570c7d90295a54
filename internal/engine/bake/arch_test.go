package bake

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
)

// foreignBase imports a base of the architecture this host does not run
// natively (arm64 on x86_64, x86_64 on arm64).
func foreignBase(t *testing.T, c *local.Cloud) (*plugin.Image, string) {
	t.Helper()
	foreign := map[string]string{"x86_64": "arm64", "arm64": "x86_64"}[binfmt.Host()]
	if foreign == "" {
		t.Skip("an unknown host architecture")
	}
	return importBase(t, c, foreign), foreign
}

// binfmtStandIn is a directory laid out as binfmt_misc is, holding the
// given handlers.
func binfmtStandIn(t *testing.T, handlers map[string]string) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"register": "", "status": "enabled\n"} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o200)
	}
	for name, body := range handlers {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	return dir
}

// A package file of another architecture than the base's is refused
// before any work (noVolumes), whichever way round; all fits both.
func TestPackageArchMustFitTheBase(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	env, c, x86 := testEnv(t) // its base is x86_64
	arm := importBase(t, c, "arm64")
	withF := func(arch string) string { return strings.ReplaceAll(debianHandler(arch), "flags: OC", "flags: POCF") }
	env.Binfmt.Dir = binfmtStandIn(t, map[string]string{"qemu-aarch64": withF("arm64"), "qemu-x86_64": withF("x86_64")})
	dir := t.TempDir()
	for _, tc := range []struct {
		base    *plugin.Image
		pkgArch string
		refusal string // "": it fits
	}{
		{x86, "amd64", ""},
		{x86, "all", ""},
		{x86, "arm64", "is built for arm64, and base image " + x86.ID + " (base) is x86_64"},
		{x86, "armhf", "is built for armhf, and base image"},
		{arm, "arm64", ""},
		{arm, "all", ""},
		{arm, "amd64", "is built for amd64 (x86_64), and base image " + arm.ID + " (base-arm64) is arm64"},
	} {
		what := tc.pkgArch + " package on a " + tc.base.Architecture + " base"
		deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-arch", Version: "1.0-1", Arch: tc.pkgArch})
		_, err := run(t, env, Request{BaseID: tc.base.ID, Package: deb, Suffix: "s", DryRun: true})
		if tc.refusal == "" {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			continue
		}
		wantUsage(t, what, err, tc.refusal)
		// A bake proper is refused before any work too (noVolumes fails the test otherwise).
		_, err = run(t, env, Request{BaseID: tc.base.ID, Package: deb, Suffix: "s"})
		wantUsage(t, what+", no dry run", err, tc.refusal)
	}
}

// importBase imports an empty base image of architecture arch.
func importBase(t *testing.T, c *local.Cloud, arch string) *plugin.Image {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	base, err := c.Import(context.Background(), raw, local.ImportOptions{Name: "base-" + arch, Architecture: arch, VirtualizationType: "hvm",
		Tags: plugin.Tags{channels.TagRole: channels.RoleBase}})
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// debianHandler is the handler Debian's qemu-user-static registers for
// arch, without the F flag.
func debianHandler(arch string) string {
	if arch == "x86_64" {
		return "enabled\ninterpreter /usr/libexec/qemu-binfmt/x86_64-binfmt-P\nflags: OC\noffset 0\nmagic 7f454c4602010100000000000000000002003e00\nmask fffffffdfffefefefffffffffffffffffeffffff\n"
	}
	return "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: OC\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
}

// A base of another architecture is baked on only where a binfmt_misc
// handler with the F flag runs its programs: without one the bake stops
// before any volume and says how to register one.
func TestForeignBaseNeedsAHandler(t *testing.T) {
	env, c, _ := testEnv(t)
	base, farch := foreignBase(t, c)
	withF := strings.ReplaceAll(debianHandler(farch), "flags: OC", "flags: POCF")
	for name, tc := range map[string]struct {
		handlers map[string]string
		want     []string
	}{
		"none":      {nil, []string{"binaries cannot run on this " + binfmt.Host() + " host", "apt-get install qemu-user-static binfmt-support", "aminate init --binfmt", "binfmt: {register: true}", base.ID}},
		"no F flag": {map[string]string{"qemu": debianHandler(farch)}, []string{"with the F flag", "aminate init --binfmt"}},
		"disabled":  {map[string]string{"qemu": strings.Replace(withF, "enabled", "disabled", 1)}, []string{"is disabled"}},
		"F flag":    {map[string]string{"qemu": withF}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			env.Binfmt.Dir = binfmtStandIn(t, tc.handlers)
			for _, dry := range []bool{true, false} {
				_, err := run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Suffix: "s", DryRun: dry})
				if tc.want == nil {
					if err != nil {
						t.Errorf("with a usable handler: %v", err)
					}
					break // a bake proper would make a volume
				}
				if !errors.Is(err, binfmt.ErrNoHandler) {
					t.Fatalf("dry run %v: %v, want ErrNoHandler", dry, err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("dry run %v: %v\nwant %q in it", dry, err, w)
					}
				}
			}
		})
	}
}

// With binfmt.register a dry run says it would register, and registers
// nothing (TestForeignBaseRegistersWhenAllowed: the bake proper does).
func TestForeignBaseDryRunRegistersNothing(t *testing.T) {
	env, c, _ := testEnv(t)
	base, _ := foreignBase(t, c)
	env.Binfmt = config.Binfmt{Register: true, Dir: binfmtStandIn(t, nil)}
	_, err := run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Suffix: "s", DryRun: true})
	if _, eerr := binfmt.Emulator(base.Architecture); eerr != nil {
		if err == nil || !strings.Contains(err.Error(), "qemu-user-static") {
			t.Errorf("no emulator on this host: %v", err)
		}
		return
	}
	if err != nil {
		t.Errorf("dry run with binfmt.register: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(env.Binfmt.Dir, "register")); len(b) != 0 {
		t.Errorf("a dry run registered %q", b)
	}
}

// With binfmt.register a bake registers the host's static emulator when
// no handler is there, and goes on: run in a user namespace of its own,
// whose binfmt_misc is its own too (Linux 6.7 and later), on a directory
// that binfmt_misc is not mounted on yet, so the host's handlers are never
// touched.
func TestForeignBaseRegistersWhenAllowed(t *testing.T) {
	foreign := map[string]string{"x86_64": "arm64", "arm64": "x86_64"}[binfmt.Host()]
	emulator, err := binfmt.Emulator(foreign)
	if foreign == "" || err != nil {
		t.Skipf("no emulator for %q here: %v", foreign, err)
	}
	if dir := os.Getenv("BAKE_BINFMT_CHILD"); dir != "" {
		s := NewState(&Environment{Binfmt: config.Binfmt{Register: true, Dir: dir}}, Request{}, slog.New(slog.DiscardHandler))
		s.Base = &plugin.Image{ID: "ami-0123456789abcdef0", Name: "base", Architecture: foreign}
		if err := (checkEmulation{}).Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		h, err := binfmt.Find(dir, foreign)
		if err != nil || h.Interpreter != emulator {
			t.Fatalf("after the check: %+v, %v", h, err)
		}
		if err := (checkEmulation{}).Run(context.Background(), s); err != nil {
			t.Fatalf("a second bake: %v", err)
		}
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", os.Args[0], "-test.run=^TestForeignBaseRegistersWhenAllowed$", "-test.v")
	cmd.Env = append(os.Environ(), "BAKE_BINFMT_CHILD="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "mount binfmt_misc") {
		t.Skipf("this kernel's binfmt_misc is not per user namespace: %s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestForeignBaseRegistersWhenAllowed") {
		t.Fatalf("%v\n%s", err, out)
	}
}
