package foundation

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The mirror comes from the host's apt configuration, in either format;
// with none, the error says how to give one.
func TestMirrorIn(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"deb822":   {files: map[string]string{"sources.list.d/debian.sources": "Types: deb\nURIs: http://mirror.example/debian/\nSuites: trixie\n"}, want: "http://mirror.example/debian"},
		"one-line": {files: map[string]string{"sources.list": "# comment\ndeb [arch=amd64] http://mirror.example/debian trixie main\n"}, want: "http://mirror.example/debian"},
		"none":     {files: map[string]string{"sources.list": "deb http://mirror.example/ubuntu noble main\n"}},
		"empty":    {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, body := range tc.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := mirrorIn(dir)
			if tc.want == "" {
				if !errors.Is(err, ErrNoMirror) {
					t.Fatalf("got %q, %v; want ErrNoMirror", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
