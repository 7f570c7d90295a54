package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery"
)

// Every bake option a bakery request carries is a flag of aminate bake
// that sets the same configuration key: a request and a command line set
// an option the same way, through the configuration.
func TestBakeryOptionsAreBakeFlags(t *testing.T) {
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCommand()
	bake, _, err := root.Find([]string{"bake"})
	if err != nil {
		t.Fatal(err)
	}
	var r bakery.Request
	for _, o := range r.Options() {
		name := strings.ReplaceAll(o.Key, "_", "-")
		f := bake.Flags().Lookup(name)
		if f == nil {
			f = bake.InheritedFlags().Lookup(name)
		}
		if f == nil {
			t.Errorf("bakery option %s: aminate bake has no --%s", o.Key, name)
			continue
		}
		if _, ok := f.Annotations[configFlag]; !ok {
			t.Errorf("bakery option %s: --%s does not set the configuration key", o.Key, name)
		}
	}
}
