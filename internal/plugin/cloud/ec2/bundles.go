package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// BundleLocations are the S3 manifests the account's images in the region
// use: an instance-store image's ImageLocation, or the tag tagKey
// (aminator tags the images it registers from a bundle, since not every
// EC2 API, moto for one, keeps ImageLocation).
func (c *Cloud) BundleLocations(ctx context.Context, tagKey string) (map[string]bool, error) {
	out := map[string]bool{}
	p := ec2.NewDescribeImagesPaginator(c.ec2, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiErr("DescribeImages", err)
		}
		for _, im := range page.Images {
			if im.RootDeviceType == "instance-store" && aws.ToString(im.ImageLocation) != "" {
				out[aws.ToString(im.ImageLocation)] = true
			}
			if v := tagsOf(im.Tags)[tagKey]; v != "" {
				out[v] = true
			}
		}
	}
	return out, nil
}
