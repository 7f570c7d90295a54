package foundation

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoMirror is returned when the host's apt configuration names no
// Debian mirror and none was given.
var ErrNoMirror = errors.New("no Debian mirror: the host's apt configuration (/etc/apt/sources.list, /etc/apt/sources.list.d) names none ending in /debian; give one with --mirror URL")

// HostMirror is the Debian mirror the host's apt configuration names
// (deb822 .sources or one-line .list). aminator names no registry of its
// own: a host with none configured gets ErrNoMirror.
func HostMirror() (string, error) {
	return mirrorIn("/etc/apt")
}

// mirrorIn reads the apt configuration under dir (normally /etc/apt).
func mirrorIn(dir string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*.sources"))
	lists, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*.list"))
	files = append(append(files, filepath.Join(dir, "sources.list")), lists...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(bytes.NewReader(b))
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			var uris []string
			if v, ok := strings.CutPrefix(line, "URIs:"); ok {
				uris = strings.Fields(v)
			} else if strings.HasPrefix(line, "deb ") {
				for _, f := range strings.Fields(line)[1:] {
					if !strings.HasPrefix(f, "[") && !strings.HasSuffix(f, "]") && strings.Contains(f, "://") {
						uris = append(uris, f)
						break
					}
				}
			}
			for _, u := range uris {
				u = strings.TrimSuffix(u, "/")
				if strings.HasSuffix(u, "/debian") {
					return u, nil
				}
			}
		}
	}
	return "", ErrNoMirror
}
