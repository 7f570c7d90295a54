package ec2

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/plugin"
)

// TagLimits are EC2's limits on the tags of one resource.
func (c *Cloud) TagLimits() plugin.TagLimits { return plugin.EC2TagLimits }

// CheckName says whether RegisterImage would take the name: it is free
// among this account's images in the region (names are unique per account
// and region), or taken and duplicate_names: number will number it.
func (c *Cloud) CheckName(ctx context.Context, name string) error {
	taken, err := c.nameTaken(ctx, name)
	if err != nil || !taken {
		return err
	}
	if c.s.DuplicateNames == "number" {
		c.log.Info("the image name is taken; it will be numbered (duplicate_names: number)", "name", name)
		return nil
	}
	return fmt.Errorf("an image named %q %w in %s", name, plugin.ErrExists, c.region)
}
