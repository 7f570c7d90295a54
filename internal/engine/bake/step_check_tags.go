package bake

import (
	"context"
	"strings"

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
	AttestTags(s.Env, image, snapshot)
	if err := CheckTags(plugin.LimitsOf(s.Env.Cloud), s.Req.Tags, map[string]plugin.Tags{"image": image, "snapshot": snapshot}); err != nil {
		return &UsageError{err}
	}
	return nil
}

// AttestTags adds to the planned tags those the attest steps will set,
// with values as long as theirs: the snapshot's disk digest (a cloud with
// DiskDigestTags) and the image's references to its documents (an
// Attester with a Publisher).
func AttestTags(env *Environment, image, snapshot plugin.Tags) {
	if env.Attest == nil {
		return
	}
	if t, ok := env.Cloud.(plugin.DiskDigestTags); ok {
		k, v := t.DiskDigestTag(strings.Repeat("0", 64))
		snapshot[k] = v
	}
	if p := env.Attest.Publisher; p != nil {
		for _, k := range p.TagKeys() {
			image[k] = strings.Repeat("0", MaxRefLen)
		}
	}
}
