package foundation

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// HostMirror is the Debian mirror the host's apt configuration names
// (deb822 .sources or one-line .list), or deb.debian.org.
func HostMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(append(files, "/etc/apt/sources.list"), lists...)
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
					return u
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}
