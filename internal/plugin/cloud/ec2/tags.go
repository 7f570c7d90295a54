package ec2

import (
	"context"
	"errors"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
)

func tagsOf(ts []types.Tag) plugin.Tags {
	out := plugin.Tags{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func toTags(t plugin.Tags) []types.Tag {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(t))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(t[k])})
	}
	return out
}

func tagSpec(rt types.ResourceType, t plugin.Tags) []types.TagSpecification {
	if len(t) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: toTags(t)}}
}

// CreateTags tags any resource.
func (c *Cloud) CreateTags(ctx context.Context, id string, tags plugin.Tags) error {
	_, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(tags)})
	return apiErr("CreateTags", err)
}

// DeleteTags removes tags by key. A resource that does not exist carries
// none: nil.
func (c *Cloud) DeleteTags(ctx context.Context, id string, keys ...string) error {
	var ts []types.Tag
	for _, k := range keys {
		ts = append(ts, types.Tag{Key: aws.String(k)})
	}
	_, err := c.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: ts})
	if err = apiErr("DeleteTags", err); errors.Is(err, plugin.ErrNotFound) {
		return nil
	}
	return err
}

// tagIs filters resources whose tag key has one of the values.
func tagIs(key string, values ...string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + key), Values: values}
}

// hasTag filters resources that carry the tag key, whatever its value.
func hasTag(key string) types.Filter {
	return types.Filter{Name: aws.String("tag-key"), Values: []string{key}}
}
