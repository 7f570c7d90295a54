package config

import (
	"fmt"
	"strings"
)

// exclusive are context settings of which one layer gives at most one, as
// the original tool's mutually exclusive flags: a layer that sets one
// replaces the other from the layers below it (a -B on the command line
// wins over a base_ami_name in /etc/aminator), and a layer that sets both
// is an error.
var exclusive = [][2]string{{"base_ami_id", "base_ami_name"}}

// flagNames are the command-line spellings of the exclusive settings.
var flagNames = map[string]string{"base_ami_id": "-B/--base-ami-id", "base_ami_name": "-b/--base-ami-name"}

// given lists the keys of a layer's context that have a non-empty value.
func given(m map[string]any) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		if v != nil && strings.TrimSpace(fmt.Sprint(v)) != "" {
			out[k] = true
		}
	}
	return out
}

// settleExclusive applies the rule above to the context keys one layer
// (source) gave a value, after it was merged.
func settleExclusive(merged map[string]any, set map[string]bool, source string, origin map[string]string) error {
	ctx, _ := merged["context"].(map[string]any)
	for _, pair := range exclusive {
		a, b := pair[0], pair[1]
		switch {
		case set[a] && set[b]:
			if source == "the command line" {
				return errorf("%s and %s are mutually exclusive: give one base image", flagNames[a], flagNames[b])
			}
			return errorf("%s: context.%s and context.%s are mutually exclusive: give one base image", source, a, b)
		case set[a]:
			clearKey(ctx, b, origin)
		case set[b]:
			clearKey(ctx, a, origin)
		}
	}
	return nil
}

func clearKey(ctx map[string]any, key string, origin map[string]string) {
	if ctx == nil {
		return
	}
	delete(ctx, key)
	delete(origin, "context."+key)
}
