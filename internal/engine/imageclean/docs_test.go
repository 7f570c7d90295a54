package imageclean

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/security.md's section lists every group of the table, each with all
// its paths, and no group the table lacks: the two cannot drift apart.
func TestDocsListTheTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## What a bake removes before the snapshot\n"
	_, sec, ok := strings.Cut(string(b), heading)
	if !ok {
		t.Fatalf("docs/security.md has no section %q", strings.TrimSpace(heading))
	}
	if end := strings.Index(sec, "\n#"); end >= 0 {
		sec = sec[:end]
	}
	rows := map[string]string{}
	for _, l := range strings.Split(sec, "\n") {
		if cells := strings.Split(l, " | "); strings.HasPrefix(l, "| ") && len(cells) == 2 && !strings.HasPrefix(l, "| group ") {
			rows[strings.TrimPrefix(cells[0], "| ")] = cells[1]
		}
	}
	for _, r := range rules {
		row, ok := rows[r.Group]
		if !ok {
			t.Errorf("docs/security.md lists no group %q", r.Group)
			continue
		}
		delete(rows, r.Group)
		for _, p := range append(append([]string(nil), r.Empty...), r.Remove...) {
			if !strings.Contains(row, "`/"+p+"`") {
				t.Errorf("docs/security.md's %q lacks `/%s`", r.Group, p)
			}
		}
	}
	for g := range rows {
		t.Errorf("docs/security.md lists a group %q the table has not", g)
	}
	if !strings.Contains(sec, unitName) {
		t.Errorf("docs/security.md does not name %s", unitName)
	}
}
