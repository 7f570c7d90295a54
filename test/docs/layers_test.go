package docs

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/aminator-go/aminator/"

// layers is the order docs/architecture.md gives, top to bottom: a package
// may import its own layer and the ones below it, never one above.
var layers = [][]string{
	{"cmd"},
	{"internal/cli"},
	{"internal/bakery"},
	{"internal/service"},
	{"internal/engine"},
	{"internal/plugin/"}, // the implementations, under their kind
	{"internal/store"},
	{"internal/image"},
	{"internal/sandbox"},
	{"internal/config"},
	{"=internal/plugin", "internal/plugin/cloud/owner", "internal/plugin/cloud/ids"}, // the vocabulary
	{"internal/fetch"},
	{"internal/ui"},
	{"internal/logging"},
	{"internal/sys"},
}

// layerOf is the index of the most specific entry matching pkg (a path
// relative to the module), or -1 (tests' helpers are outside the layers).
func layerOf(pkg string) int {
	best, bestLen := -1, -1
	for i, l := range layers {
		for _, p := range l {
			exact, prefix := strings.CutPrefix(p, "=")
			var ok bool
			switch {
			case prefix:
				ok = pkg == exact
			case strings.HasSuffix(p, "/"):
				ok = strings.HasPrefix(pkg, p)
			default:
				ok = pkg == p || strings.HasPrefix(pkg, p+"/")
			}
			if ok && len(p) > bestLen {
				best, bestLen = i, len(p)
			}
		}
	}
	return best
}

func TestLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./internal/...", "./cmd/...")
	cmd.Dir = "../.."
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		from := layerOf(pkg)
		if from < 0 {
			continue
		}
		n++
		for _, imp := range f[1:] {
			imp, ours := strings.CutPrefix(imp, module)
			if to := layerOf(imp); ours && to >= 0 && to < from {
				t.Errorf("%s imports %s, a layer above it (docs/architecture.md, Where a change goes)", pkg, imp)
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d packages placed in a layer: the table no longer matches the tree", n)
	}
}

// Every package under internal/ belongs to a layer or to the test helpers.
func TestEveryPackageHasALayer(t *testing.T) {
	cmd := exec.Command("go", "list", "./internal/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		p = strings.TrimPrefix(p, module)
		if layerOf(p) < 0 && !strings.HasPrefix(p, "internal/testutil") && !strings.HasSuffix(p, "test") {
			t.Errorf("%s is in no layer of docs/architecture.md", p)
		}
	}
}
