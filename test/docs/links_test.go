// Package docs checks the project's Markdown: every relative link leads to
// a file that exists, and every #anchor to a heading in it, so moving a
// section between the README and docs/ cannot leave a dead link behind.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceRE   = regexp.MustCompile("(?s)```.*?```")
	headingRE = regexp.MustCompile(`^#{1,6} (.*)$`)
	slugDrop  = regexp.MustCompile(`[^\w\- ]`)
)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	h = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(h)), "`", "")
	return strings.ReplaceAll(slugDrop.ReplaceAllString(h, ""), " ", "-")
}

// anchors lists the headings of a Markdown file, outside code fences.
func anchors(t *testing.T, path string) map[string]bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, code := map[string]bool{}, false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "```") {
			code = !code
		}
		if m := headingRE.FindStringSubmatch(l); m != nil && !code {
			out[slug(m[1])] = true
		}
	}
	return out
}

func TestRelativeLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "BENCHMARKS.md"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(b), ""), -1) {
			target := m[1]
			if regexp.MustCompile(`^[a-z]+:`).MatchString(target) {
				continue
			}
			n++
			p, anchor, _ := strings.Cut(target, "#")
			dest := f
			if p != "" {
				dest = filepath.Join(filepath.Dir(f), p)
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %s: %v", f, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !anchors(t, dest)[anchor] {
				t.Errorf("%s: link %s: no heading #%s in %s", f, target, anchor, dest)
			}
		}
	}
	if n == 0 {
		t.Fatal("no links found: the test reads the wrong files")
	}
}
