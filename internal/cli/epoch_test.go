package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// foundation's --source-date-epoch, else SOURCE_DATE_EPOCH, else none; a
// bad value is a usage error naming where it came from.
func TestSourceDateEpoch(t *testing.T) {
	parse := func(args ...string) (*int64, error) {
		f := pflag.NewFlagSet("foundation", pflag.ContinueOnError)
		f.String("source-date-epoch", "", "")
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return sourceDateEpoch(f.Lookup("source-date-epoch"))
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
	if n, err := parse("--source-date-epoch", "1700000000"); err != nil || n == nil || *n != 1700000000 {
		t.Errorf("the flag: %v %v", n, err)
	}
	if n, err := parse(); err != nil || n == nil || *n != 1600000000 {
		t.Errorf("the environment: %v %v", n, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "soon")
	var ue usageError
	if _, err := parse(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("a bad SOURCE_DATE_EPOCH: %v", err)
	}
	if _, err := parse("--source-date-epoch", "99999999999"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--source-date-epoch") {
		t.Errorf("an epoch in the future: %v", err)
	}
}

// An empty SOURCE_DATE_EPOCH is none, as a shell's "SOURCE_DATE_EPOCH=" means.
func TestNoSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	f := pflag.NewFlagSet("foundation", pflag.ContinueOnError)
	f.String("source-date-epoch", "", "")
	if n, err := sourceDateEpoch(f.Lookup("source-date-epoch")); n != nil || err != nil {
		t.Errorf("an empty SOURCE_DATE_EPOCH: %v %v", n, err)
	}
}
