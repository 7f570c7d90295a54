package instancestore

import (
	"testing"

	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
)

func bundleStore(t *testing.T, c *ec2cloud.Cloud, loc string) *bundlestore.Store {
	t.Helper()
	st, err := bundlestore.New(c.AWSConfig(), loc, bundlestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
