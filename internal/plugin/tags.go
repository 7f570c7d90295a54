package plugin

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TagLimits are what a cloud accepts in the tags of one image, snapshot or
// volume. A bake checks a user's tags against them before it does any work,
// so a tag the cloud would refuse at registration fails at once.
type TagLimits struct {
	// MaxTags is the most tags one resource may carry, aminator's own included.
	MaxTags int
	// MaxKeyLen and MaxValueLen are in characters (Unicode code points).
	MaxKeyLen, MaxValueLen int
	// ReservedPrefixes are key prefixes the cloud keeps for itself
	// (compared without regard to case).
	ReservedPrefixes []string
}

// EC2TagLimits are EC2's: 50 tags per resource, keys of at most 128
// characters, values of at most 256, and no key starting with aws:.
var EC2TagLimits = TagLimits{MaxTags: 50, MaxKeyLen: 128, MaxValueLen: 256, ReservedPrefixes: []string{"aws:"}}

// TagLimiter is implemented by clouds to say what tags they accept.
type TagLimiter interface {
	TagLimits() TagLimits
}

// LimitsOf returns a cloud's tag limits; EC2's when the cloud does not say.
func LimitsOf(c Cloud) TagLimits {
	if l, ok := c.(TagLimiter); ok {
		return l.TagLimits()
	}
	return EC2TagLimits
}

// CheckTag checks one tag's key and value.
func (l TagLimits) CheckTag(key, value string) error {
	if key == "" {
		return fmt.Errorf("tag %q: the key is empty", key+"="+value)
	}
	if n := utf8.RuneCountInString(key); l.MaxKeyLen > 0 && n > l.MaxKeyLen {
		return fmt.Errorf("tag key %.40q...: %d characters; the cloud takes at most %d", key, n, l.MaxKeyLen)
	}
	for _, p := range l.ReservedPrefixes {
		if strings.HasPrefix(strings.ToLower(key), strings.ToLower(p)) {
			return fmt.Errorf("tag %q: keys starting with %s are reserved by the cloud", key, p)
		}
	}
	if n := utf8.RuneCountInString(value); l.MaxValueLen > 0 && n > l.MaxValueLen {
		return fmt.Errorf("tag %q: its value has %d characters; the cloud takes at most %d", key, n, l.MaxValueLen)
	}
	if !utf8.ValidString(key) || !utf8.ValidString(value) {
		return fmt.Errorf("tag %q: not valid UTF-8", key)
	}
	return nil
}

// NameChecker is implemented by clouds that can tell, before a bake does
// any work, whether RegisterImage would refuse an image name.
type NameChecker interface {
	// CheckName returns nil when RegisterImage would take the name (it is
	// free, or the cloud numbers a taken name), else an error wrapping
	// ErrExists.
	CheckName(ctx context.Context, name string) error
}
