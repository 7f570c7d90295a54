package instancestore

import (
	"testing"

	"github.com/aminator-go/aminator/internal/bundlestore"
	ec2cloud "github.com/aminator-go/aminator/internal/cloud/ec2"
)

func bundleStore(t *testing.T, c *ec2cloud.Cloud, loc string) *bundlestore.Store {
	t.Helper()
	st, err := bundlestore.New(c.AWSConfig(), loc, bundlestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
