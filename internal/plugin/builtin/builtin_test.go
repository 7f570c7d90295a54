package builtin_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
)

const module = "github.com/aminator-go/aminator/internal/plugin/"

// registers matches a package-level init that registers a plugin
// (plugin.Register, or a helper such as distro.Register).
var registers = regexp.MustCompile(`(?s)func init\(\) \{[^}]*Register\(`)

// Every package under internal/plugin whose init registers a plugin is in
// builtin's list, so no binary or test that imports builtin misses one.
func TestListsEveryPlugin(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "builtin.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		listed = append(listed, strings.TrimPrefix(p, module))
	}
	var found []string
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkg, err := filepath.Rel("..", filepath.Dir(p))
		if err == nil && registers.Match(src) && !slices.Contains(found, filepath.ToSlash(pkg)) {
			found = append(found, filepath.ToSlash(pkg))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("found no package that registers a plugin: the scan is broken")
	}
	for _, pkg := range found {
		if !slices.Contains(listed, pkg) {
			t.Errorf("package %s registers a plugin but builtin.go does not import it", path.Join(module, pkg))
		}
	}
}

// Importing builtin registers a plugin of every kind.
func TestEveryKind(t *testing.T) {
	for _, k := range plugin.Kinds {
		if len(plugin.Names(k)) == 0 {
			t.Errorf("no %s plugin registered", k)
		}
	}
}
