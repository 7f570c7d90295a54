package ec2

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Host reads this instance's identity from instance metadata (IMDSv2),
// once: the answer is kept, a failure is not (a cancelled first call must
// not spoil the calls after it).
func (c *Cloud) Host(ctx context.Context) (plugin.Host, error) {
	c.hostMu.Lock()
	defer c.hostMu.Unlock()
	if c.host != nil {
		return *c.host, nil
	}
	doc, err := c.imds.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return plugin.Host{}, fmt.Errorf("instance metadata (is this an EC2 instance? AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address): %w", err)
	}
	c.host = &plugin.Host{Region: doc.Region, AvailabilityZone: doc.AvailabilityZone, InstanceID: doc.InstanceID}
	c.log.Debug("host", "instance", doc.InstanceID, "zone", doc.AvailabilityZone, "region", doc.Region)
	return *c.host, nil
}

// AttachedDevices lists the device names attached to this instance, so a
// device pick never collides with one EC2 still holds.
func (c *Cloud) AttachedDevices(ctx context.Context) ([]string, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{h.InstanceID}})
	if err != nil {
		return nil, apiErr("DescribeInstances", err)
	}
	var devs []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			for _, b := range i.BlockDeviceMappings {
				devs = append(devs, aws.ToString(b.DeviceName))
			}
		}
	}
	return devs, nil
}
