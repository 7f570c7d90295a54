package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/plugin"
)

// TagLimits are EC2's: the local cloud stands in for EC2, so a bake that
// passes here does not fail there for its tags.
func (c *Cloud) TagLimits() plugin.TagLimits { return plugin.EC2TagLimits }

// CheckName says whether RegisterImage would take the name.
func (c *Cloud) CheckName(ctx context.Context, name string) error {
	im, err := c.Image(ctx, plugin.ImageQuery{Name: name})
	if err == nil {
		return fmt.Errorf("an image named %q (%s) %w", name, im.ID, plugin.ErrExists)
	}
	if errors.Is(err, plugin.ErrNotFound) {
		return nil
	}
	return err
}
