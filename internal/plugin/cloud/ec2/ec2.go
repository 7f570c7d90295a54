// Package ec2 is the EC2 cloud: the bake runs on an EC2 instance and works
// on EBS volumes, snapshots and AMIs through aws-sdk-go-v2. Region,
// credentials and endpoint come from the standard AWS configuration chain
// (profiles, environment, instance role; AWS_ENDPOINT_URL and
// AWS_EC2_METADATA_SERVICE_ENDPOINT included), the host's identity from
// instance metadata with IMDSv2. Every call goes through the SDK's
// standard retryer (backoff on throttling) and is logged at DEBUG with its
// request id; every wait has a timeout. A host may keep a pool of ready
// volumes of its bases (pool.go), which bakes take instead of making one.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Settings are the plugin's settings (plugins: cloud.ec2:).
type Settings struct {
	// Owners filter base images found by name (default: self).
	Owners []string `yaml:"owners"`
	// VolumeType of the work volume (gp3 by default), with IOPS and throughput.
	VolumeType string `yaml:"volume_type"`
	IOPS       int32  `yaml:"iops"`
	Throughput int32  `yaml:"throughput"`
	// Encrypted work volumes, with an optional KMS key.
	Encrypted bool   `yaml:"encrypted"`
	KMSKeyID  string `yaml:"kms_key_id"`
	// WaitTimeout bounds each wait (volume, attachment, snapshot, image).
	WaitTimeout time.Duration `yaml:"wait_timeout"`
	// PollInterval is the shortest time between two polls of a wait.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxAttempts of the retryer per call.
	MaxAttempts int `yaml:"max_attempts"`
	// DuplicateNames: "error" (default) or "number", the original's
	// retry with -1, -2, ... appended.
	DuplicateNames string `yaml:"duplicate_names"`
	// PoolAttach keeps pool volumes attached to this instance, so a bake
	// that takes one skips the attach and the wait for its device too.
	PoolAttach bool `yaml:"pool_attach"`
}

// Defaults are the built-in settings.
func Defaults() *Settings {
	return &Settings{Owners: []string{"self"}, VolumeType: "gp3", WaitTimeout: 30 * time.Minute, PollInterval: 5 * time.Second, MaxAttempts: 10, DuplicateNames: "error"}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindCloud, Name: "ec2",
		Description: "Amazon EC2: EBS volumes, snapshots and AMIs (run on an EC2 instance)",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			c, err := New(context.Background(), cfg.(*Settings), d.Region, d.Logger)
			if err == nil {
				c.UseDirs(d.StateDir, d.LockDir)
			}
			return c, err
		},
	})
}

// Cloud is the EC2 cloud.
type Cloud struct {
	s    *Settings
	cfg  aws.Config
	ec2  *ec2.Client
	imds *imds.Client
	// ebs is the EBS direct APIs' client (ebsClient makes it).
	ebs     *ebs.Client
	ebsOnce sync.Once
	log     *slog.Logger
	region  string

	hostMu sync.Mutex
	host   *plugin.Host // nil until instance metadata answered

	// stateDir keeps this host's pool targets, lockDir its pool locks.
	stateDir, lockDir string
	// poolTaken is called after a bake takes a pool volume of a
	// snapshot, to refill the pool in the background.
	poolTaken func(snapshotID string)
}

// UseDirs sets the state and lock directories (the pool's targets and
// locks); without them the cloud keeps no pool.
func (c *Cloud) UseDirs(stateDir, lockDir string) { c.stateDir, c.lockDir = stateDir, lockDir }

var regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$`)

// ValidRegion reports whether r looks like an AWS region name.
func ValidRegion(r string) bool { return regionRE.MatchString(r) }

// Option changes how the client is made (tests: an HTTP client that
// records or injects).
type Option func(*config.LoadOptions) error

// New loads the AWS configuration and makes the clients. region "" or
// "local" means: from the AWS configuration, else from instance metadata.
func New(ctx context.Context, s *Settings, region string, log *slog.Logger, opts ...Option) (*Cloud, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if region == "local" {
		region = ""
	}
	if region != "" && !ValidRegion(region) {
		return nil, fmt.Errorf("region %q is not a region name like us-east-1", region)
	}
	if s.DuplicateNames != "error" && s.DuplicateNames != "number" {
		return nil, fmt.Errorf("cloud.ec2 duplicate_names %q: error or number", s.DuplicateNames)
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = max(1, s.MaxAttempts) })
		}),
		config.WithAPIOptions([]func(*middleware.Stack) error{logMiddleware(log)}),
	}
	if region != "" {
		loadOpts = append(loadOpts, config.WithRegion(region))
	}
	for _, o := range opts {
		loadOpts = append(loadOpts, o)
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	c := &Cloud{s: s, cfg: cfg, log: log, imds: imds.NewFromConfig(cfg)}
	if cfg.Region == "" {
		h, err := c.Host(ctx)
		if err != nil {
			return nil, fmt.Errorf("no region configured (--region, AWS_REGION or a profile) and none from instance metadata: %w", err)
		}
		cfg.Region = h.Region
	}
	if !ValidRegion(cfg.Region) {
		return nil, fmt.Errorf("region %q is not a region name like us-east-1", cfg.Region)
	}
	c.region = cfg.Region
	c.cfg = cfg
	c.ec2 = ec2.NewFromConfig(cfg)
	return c, nil
}

// Region is the region the client works in.
func (c *Cloud) Region() string { return c.region }

// AWSConfig is the loaded AWS configuration (for other services' clients,
// such as the EBS direct APIs).
func (c *Cloud) AWSConfig() aws.Config { return c.cfg }

// logMiddleware logs every call at DEBUG with its request id and duration.
func logMiddleware(log *slog.Logger) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("aminator-log", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleDeserialize(ctx, in)
			id, _ := awsmiddleware.GetRequestIDMetadata(md)
			log.Debug("aws call", "service", awsmiddleware.GetServiceID(ctx), "operation", awsmiddleware.GetOperationName(ctx),
				"request_id", id, "took", time.Since(start).Round(time.Millisecond), "err", err)
			return out, md, err
		}), middleware.After)
	}
}

// apiErr turns SDK errors into messages that say what to do.
func apiErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException":
			return fmt.Errorf("%s: permission denied (%s); the IAM policy needs ec2:%s (see docs/iam-policy.json): %w", op, ae.ErrorMessage(), op, err)
		// A deregistered image is InvalidAMIID.Unavailable until EC2 forgets it.
		case strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, ".Malformed") || code == "InvalidAMIID.Unavailable":
			return fmt.Errorf("%s: %s: %w", op, ae.ErrorMessage(), plugin.ErrNotFound)
		case code == "AuthFailure" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch":
			return fmt.Errorf("%s: AWS rejected the credentials (%s): %w", op, ae.ErrorMessage(), err)
		}
		return fmt.Errorf("%s: %s: %w", op, code, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

var _ plugin.Cloud = (*Cloud)(nil)
