package s3bundle

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bundled makes a small bundle to tamper with.
func bundled(t *testing.T) (dir string, doc []byte, m *Manifest) {
	t.Helper()
	dir = t.TempDir()
	res, err := Bundle(context.Background(), sparseDisk(t, t.TempDir(), 8<<20, 8), dir, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	doc, err = os.ReadFile(res.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	return dir, doc, res.Manifest
}

func unbundleErr(t *testing.T, dir string, doc []byte, key *rsa.PrivateKey) error {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "out.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	_, err = Unbundle(context.Background(), doc, key, DirOpener(dir), out)
	return err
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one saying %q", err, want)
	}
}

func TestTamperedPart(t *testing.T) {
	dir, doc, m := bundled(t)
	p := filepath.Join(dir, m.Parts[1].Name)
	b, _ := os.ReadFile(p)
	b[100] ^= 1
	os.WriteFile(p, b, 0o644)
	wantErr(t, unbundleErr(t, dir, doc, testOptions(t).Key), "digest")
}

func TestMissingPart(t *testing.T) {
	dir, doc, m := bundled(t)
	os.Remove(filepath.Join(dir, m.Parts[0].Name))
	wantErr(t, unbundleErr(t, dir, doc, testOptions(t).Key), "no such file")
}

// Changing anything signed (here the image size, a part's digest, the
// kernel) breaks the signature.
func TestTamperedManifest(t *testing.T) {
	dir, doc, m := bundled(t)
	key := testOptions(t).Key
	for _, c := range []struct{ from, to string }{
		{"<size>8388608</size>", "<size>8388609</size>"},
		{m.Parts[0].Digest, strings.Repeat("0", 40)},
		{"<architecture>x86_64</architecture>", "<architecture>x86_64</architecture><kernel_id>aki-12345678</kernel_id>"},
	} {
		bad := bytes.Replace(doc, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, doc) {
			t.Fatalf("%q not in the manifest", c.from)
		}
		wantErr(t, unbundleErr(t, dir, bad, key), "signature does not verify")
	}
}

func TestTamperedSignature(t *testing.T) {
	dir, doc, m := bundled(t)
	sig := []byte(m.Signature)
	if sig[10] == '0' { // another hex digit, whatever the signature's is
		sig[10] = '1'
	} else {
		sig[10] = '0'
	}
	bad := bytes.Replace(doc, []byte(m.Signature), sig, 1)
	wantErr(t, unbundleErr(t, dir, bad, testOptions(t).Key), "signature does not verify")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, unbundleErr(t, dir, doc, other), "signature does not verify")
}

// A bundle that fails half way (here: cancelled) leaves nothing behind.
func TestFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Bundle(ctx, fullDisk(t, t.TempDir(), 4<<20), dir, testOptions(t)); err == nil {
		t.Fatal("a cancelled bundle succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

func TestRefused(t *testing.T) {
	tmp := t.TempDir()
	big := filepath.Join(tmp, "big.img")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(big, MaxImageSize+1)
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, c := range map[string]struct {
		img  string
		edit func(*Options)
		want string
	}{
		"over 10 GiB":   {big, func(*Options) {}, "up to 10 GiB"},
		"account":       {big, func(o *Options) { o.Account = "12345" }, "account"},
		"arch":          {big, func(o *Options) { o.Arch = "sparc" }, "architecture"},
		"name":          {big, func(o *Options) { o.Name = "../x" }, "bundle name"},
		"wrong key":     {big, func(o *Options) { o.Key = other }, "does not belong"},
		"kernel":        {big, func(o *Options) { o.KernelID = "<x>" }, "not an image id"},
		"level":         {big, func(o *Options) { o.Level = 12 }, "gzip level"},
		"not a file":    {tmp, func(*Options) {}, "neither a file nor a block device"},
		"missing image": {filepath.Join(tmp, "nope"), func(*Options) {}, "no such file"},
	} {
		o := testOptions(t)
		c.edit(&o)
		out := t.TempDir()
		_, err := Bundle(context.Background(), c.img, out, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("%s: left %v", name, ents)
		}
	}
}

func TestEC2CertificatePerPartition(t *testing.T) {
	seen := map[string]string{}
	for _, r := range []string{"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1"} {
		c, err := EC2Certificate(r)
		if err != nil {
			t.Fatal(err)
		}
		seen[r] = c.Subject.String()
	}
	if seen["us-east-1"] != seen["eu-west-1"] || seen["us-east-1"] == seen["us-gov-west-1"] ||
		seen["us-east-1"] == seen["cn-north-1"] || seen["cn-north-1"] != seen["cn-northwest-1"] {
		t.Fatalf("certificates by region: %v", seen)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"app-1.0-1-x86_64-20261126-s3": "app-1.0-1-x86_64-20261126-s3",
		"a/b:c d":                      "a_b_c_d",
		"..hidden":                     "__hidden",
		".x":                           "_x",
		"":                             "_",
		strings.Repeat("y", 120):       strings.Repeat("y", 100),
	} {
		if got := SafeName(in); got != want || !safeName(got) {
			t.Errorf("SafeName(%q) = %q, want %q (valid %v)", in, got, want, safeName(got))
		}
	}
}
