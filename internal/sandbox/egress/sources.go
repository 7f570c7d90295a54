package egress

import (
	"bufio"
	"bytes"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
)

// SourceHosts reads the hosts of an image's package sources through root:
// apt's sources.list and sources.list.d (one-line and deb822 formats) and
// yum's repos.d (baseurl, mirrorlist, metalink). Only http and https. A
// mirror list names mirrors only known when it is read: then AnyHost is
// among the hosts (the proxy still refuses loopback and link-local).
func SourceHosts(root *os.Root) []string {
	hosts := map[string]bool{}
	add := func(raw string) {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
			hosts[strings.ToLower(u.Hostname())] = true
		}
	}
	read := func(p string, fn func(line string)) {
		b, err := fs.ReadFile(root.FS(), p)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				fn(line)
			}
		}
	}
	aptLine := func(line string) {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "deb" && f[0] != "deb-src") {
			return
		}
		i := 1
		if strings.HasPrefix(f[1], "[") { // [ options ]
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			i++
		}
		if i < len(f) {
			add(f[i])
		}
	}
	deb822 := func(line string) {
		if v, ok := strings.CutPrefix(line, "URIs:"); ok {
			for _, u := range strings.Fields(v) {
				add(u)
			}
		}
	}
	yumLine := func(line string) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return
		}
		switch strings.TrimSpace(k) {
		case "mirrorlist", "metalink":
			hosts[AnyHost] = true
			fallthrough
		case "baseurl":
			for _, u := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
				add(u)
			}
		}
	}
	read("etc/apt/sources.list", aptLine)
	for _, dir := range []struct {
		dir, ext string
		fn       func(string)
	}{{"etc/apt/sources.list.d", ".list", aptLine}, {"etc/apt/sources.list.d", ".sources", deb822}, {"etc/yum.repos.d", ".repo", yumLine}} {
		ents, _ := fs.ReadDir(root.FS(), dir.dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), dir.ext) {
				read(path.Join(dir.dir, e.Name()), dir.fn)
			}
		}
	}
	out := make([]string, 0, len(hosts))
	for h := range hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
