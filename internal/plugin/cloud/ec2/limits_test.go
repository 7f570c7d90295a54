package ec2_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// CheckName says before a bake what RegisterImage will do: a name this
// account took is refused, unless duplicate_names: number will number it.
func TestCheckName(t *testing.T) {
	e := ec2test.Start(t)
	c := newCloud(t, nil, nil)
	ctx := context.Background()
	if l := plugin.LimitsOf(c); l.MaxTags != 50 || l.MaxValueLen != 256 {
		t.Errorf("limits %+v", l)
	}
	base, err := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckName(ctx, "free-name"); err != nil {
		t.Errorf("a free name: %v", err)
	}
	if err := c.CheckName(ctx, base.Name); !errors.Is(err, plugin.ErrExists) {
		t.Errorf("the base's name: %v", err)
	}
	s := ec2cloud.Defaults()
	s.DuplicateNames, s.PollInterval = "number", 50*time.Millisecond
	if err := newCloud(t, s, nil).CheckName(ctx, base.Name); err != nil {
		t.Errorf("duplicate_names: number: %v", err)
	}
}
