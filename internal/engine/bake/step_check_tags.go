package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
)

// checkTagLimits checks the user's tags and the bake's own (with the
// values known before the install: -c and -n make some) against the
// cloud's limits, on the image and on its snapshot, so a tag the cloud
// would refuse at registration fails before any work.
type checkTagLimits struct{}

func (checkTagLimits) Name() string { return "" }

func (checkTagLimits) Run(_ context.Context, s *State) error {
	req := s.Req
	req.Tags = nil
	// The boot tag's value is read from the disk later: its longest.
	image, snapshot := Tags(TagInput{Request: req, Base: s.Base, Host: &plugin.Host{}, Boot: bootdisk.TagBoth})
	if err := CheckTags(plugin.LimitsOf(s.Env.Cloud), s.Req.Tags, map[string]plugin.Tags{"image": image, "snapshot": snapshot}); err != nil {
		return &UsageError{err}
	}
	return nil
}
