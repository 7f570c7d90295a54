// Package ec2 is the EC2 cloud: the bake runs on an EC2 instance and works
// on EBS volumes, snapshots and AMIs through aws-sdk-go-v2. Region,
// credentials and endpoint come from the standard AWS configuration chain
// (profiles, environment, instance role; AWS_ENDPOINT_URL and
// AWS_EC2_METADATA_SERVICE_ENDPOINT included), the host's identity from
// instance metadata with IMDSv2. Every call goes through the SDK's
// standard retryer (backoff on throttling) and is logged at DEBUG with its
// request id; every wait has a timeout.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/progress"
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
			return New(context.Background(), cfg.(*Settings), d.Region, d.Logger)
		},
	})
}

// Cloud is the EC2 cloud.
type Cloud struct {
	s      *Settings
	cfg    aws.Config
	ec2    *ec2.Client
	imds   *imds.Client
	log    *slog.Logger
	region string

	hostMu sync.Mutex
	host   *plugin.Host // nil until instance metadata answered
}

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

func fromImage(im types.Image) *plugin.Image {
	out := &plugin.Image{
		ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), Description: aws.ToString(im.Description),
		Architecture: string(im.Architecture), VirtualizationType: string(im.VirtualizationType),
		RootDeviceName: aws.ToString(im.RootDeviceName), RootDeviceType: string(im.RootDeviceType),
		EnaSupport: aws.ToBool(im.EnaSupport), SriovNetSupport: aws.ToString(im.SriovNetSupport) == "simple",
		BootMode: string(im.BootMode), KernelID: aws.ToString(im.KernelId), RamdiskID: aws.ToString(im.RamdiskId),
		OwnerID: aws.ToString(im.OwnerId), State: string(im.State), Tags: tagsOf(im.Tags),
	}
	if t, err := time.Parse(time.RFC3339, aws.ToString(im.CreationDate)); err == nil {
		out.CreatedAt = t
	}
	for _, b := range im.BlockDeviceMappings {
		m := plugin.BlockDeviceMapping{DeviceName: aws.ToString(b.DeviceName), VirtualName: aws.ToString(b.VirtualName)}
		if b.Ebs != nil {
			m.SnapshotID = aws.ToString(b.Ebs.SnapshotId)
			m.VolumeSizeGiB = int64(aws.ToInt32(b.Ebs.VolumeSize))
			m.VolumeType = string(b.Ebs.VolumeType)
			m.DeleteOnTermination = aws.ToBool(b.Ebs.DeleteOnTermination)
		}
		out.BlockDevices = append(out.BlockDevices, m)
	}
	return out
}

// Image finds an image by id, or by exact name among the configured owners
// (the newest, with a warning when several match).
func (c *Cloud) Image(ctx context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	in := &ec2.DescribeImagesInput{}
	what := ""
	switch {
	case q.ID != "":
		in.ImageIds = []string{q.ID}
		what = "id " + q.ID
	case q.Name != "":
		in.Owners = c.s.Owners
		in.Filters = []types.Filter{{Name: aws.String("name"), Values: []string{q.Name}}}
		what = "name " + q.Name
	default:
		return nil, errors.New("image: give an id or a name")
	}
	out, err := c.ec2.DescribeImages(ctx, in)
	if err != nil {
		if errors.Is(apiErr("DescribeImages", err), plugin.ErrNotFound) {
			return nil, fmt.Errorf("no image with %s in %s: %w", what, c.region, plugin.ErrNotFound)
		}
		return nil, apiErr("DescribeImages", err)
	}
	if len(out.Images) == 0 {
		return nil, fmt.Errorf("no image with %s in %s (owners %v): %w", what, c.region, c.s.Owners, plugin.ErrNotFound)
	}
	ims := make([]*plugin.Image, 0, len(out.Images))
	for _, im := range out.Images {
		ims = append(ims, fromImage(im))
	}
	sort.Slice(ims, func(i, j int) bool { return ims[i].CreatedAt.After(ims[j].CreatedAt) })
	if len(ims) > 1 {
		var idl []string
		for _, im := range ims {
			idl = append(idl, im.ID)
		}
		c.log.Warn("several images match; using the newest", "name", q.Name, "chosen", ims[0].ID, "all", strings.Join(idl, ","))
	}
	im := ims[0]
	if im.RootDeviceType == "instance-store" {
		return nil, fmt.Errorf("image %s has an instance-store root; aminator bakes EBS-backed images only", im.ID)
	}
	return im, nil
}

// FindImages lists this account's images carrying all the tags, newest first.
func (c *Cloud) FindImages(ctx context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}}
	for k, v := range tags {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{v}})
	}
	out, err := c.ec2.DescribeImages(ctx, in)
	if err != nil {
		return nil, apiErr("DescribeImages", err)
	}
	var ims []*plugin.Image
	for _, im := range out.Images {
		ims = append(ims, fromImage(im))
	}
	sort.Slice(ims, func(i, j int) bool { return ims[i].CreatedAt.After(ims[j].CreatedAt) })
	return ims, nil
}

// Snapshot describes a snapshot.
func (c *Cloud) Snapshot(ctx context.Context, id string) (*plugin.Snapshot, error) {
	out, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		return nil, apiErr("DescribeSnapshots", err)
	}
	if len(out.Snapshots) == 0 {
		return nil, fmt.Errorf("no snapshot %s: %w", id, plugin.ErrNotFound)
	}
	s := out.Snapshots[0]
	return &plugin.Snapshot{ID: id, VolumeID: aws.ToString(s.VolumeId), SizeBytes: int64(aws.ToInt32(s.VolumeSize)) << 30,
		Description: aws.ToString(s.Description), State: string(s.State), CreatedAt: aws.ToTime(s.StartTime), Tags: tagsOf(s.Tags)}, nil
}

func fromVolume(v types.Volume) *plugin.Volume {
	out := &plugin.Volume{ID: aws.ToString(v.VolumeId), SnapshotID: aws.ToString(v.SnapshotId), SizeBytes: int64(aws.ToInt32(v.Size)) << 30,
		State: string(v.State), CreatedAt: aws.ToTime(v.CreateTime), Tags: tagsOf(v.Tags)}
	if len(v.Attachments) > 0 {
		out.Device = aws.ToString(v.Attachments[0].Device)
		out.AttachedTo = aws.ToString(v.Attachments[0].InstanceId)
	}
	return out
}

func (c *Cloud) waitOpts() time.Duration {
	if c.s.WaitTimeout <= 0 {
		return 30 * time.Minute
	}
	return c.s.WaitTimeout
}

func (c *Cloud) minDelay() time.Duration {
	if c.s.PollInterval <= 0 {
		return time.Second
	}
	return c.s.PollInterval
}

// CreateVolume makes the work volume in this host's availability zone.
func (c *Cloud) CreateVolume(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	gib := int32((r.SizeBytes + (1<<30 - 1)) >> 30)
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(h.AvailabilityZone), VolumeType: types.VolumeType(c.volumeType(r.Type)),
		TagSpecifications: tagSpec(types.ResourceTypeVolume, r.Tags)}
	if gib > 0 {
		in.Size = aws.Int32(gib)
	}
	if r.SnapshotID != "" {
		in.SnapshotId = aws.String(r.SnapshotID)
	}
	if c.s.IOPS > 0 {
		in.Iops = aws.Int32(c.s.IOPS)
	}
	if c.s.Throughput > 0 {
		in.Throughput = aws.Int32(c.s.Throughput)
	}
	if c.s.Encrypted || c.s.KMSKeyID != "" {
		in.Encrypted = aws.Bool(true)
		if c.s.KMSKeyID != "" {
			in.KmsKeyId = aws.String(c.s.KMSKeyID)
		}
	}
	out, err := c.ec2.CreateVolume(ctx, in)
	if err != nil {
		return nil, apiErr("CreateVolume", err)
	}
	id := aws.ToString(out.VolumeId)
	w := ec2.NewVolumeAvailableWaiter(c.ec2, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, c.waitOpts()); err != nil {
		c.ec2.DeleteVolume(context.WithoutCancel(ctx), &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
		return nil, fmt.Errorf("volume %s did not become available: %w", id, err)
	}
	v, err := c.Volume(ctx, id)
	if err != nil {
		c.ec2.DeleteVolume(context.WithoutCancel(ctx), &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	}
	return v, err
}

func (c *Cloud) volumeType(t string) string {
	switch t {
	case "", "local":
		return c.s.VolumeType
	}
	return t
}

// Volume describes a volume.
func (c *Cloud) Volume(ctx context.Context, id string) (*plugin.Volume, error) {
	out, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		return nil, apiErr("DescribeVolumes", err)
	}
	if len(out.Volumes) == 0 {
		return nil, fmt.Errorf("no volume %s: %w", id, plugin.ErrNotFound)
	}
	return fromVolume(out.Volumes[0]), nil
}

// AttachVolume attaches the volume to this instance at device and waits
// until EC2 reports the attachment complete.
func (c *Cloud) AttachVolume(ctx context.Context, id, device string) (plugin.Attachment, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return plugin.Attachment{}, err
	}
	if device == "" {
		return plugin.Attachment{}, errors.New("attach: no device name allocated")
	}
	if _, err := c.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(h.InstanceID), Device: aws.String(device)}); err != nil {
		return plugin.Attachment{}, apiErr("AttachVolume", err)
	}
	if err := c.poll(ctx, "attachment of "+id, func(ctx context.Context) (bool, error) {
		v, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil {
			return false, apiErr("DescribeVolumes", err)
		}
		for _, vol := range v.Volumes {
			for _, a := range vol.Attachments {
				if aws.ToString(a.InstanceId) == h.InstanceID && a.State == types.VolumeAttachmentStateAttached {
					return true, nil
				}
			}
		}
		return false, nil
	}); err != nil {
		return plugin.Attachment{}, err
	}
	return plugin.Attachment{VolumeID: id, Device: device}, nil
}

// poll calls fn until it says done, an error, or the wait timeout.
func (c *Cloud) poll(ctx context.Context, what string, fn func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.waitOpts())
	defer cancel()
	delay := min(c.minDelay(), 250*time.Millisecond)
	for {
		done, err := fn(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %s: %w", what, c.waitOpts(), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, c.minDelay())
	}
}

// DetachVolume detaches the volume from this instance (always naming the
// instance) and waits until it is available.
func (c *Cloud) DetachVolume(ctx context.Context, id string) error {
	h, err := c.Host(ctx)
	if err != nil {
		return err
	}
	if _, err := c.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(h.InstanceID)}); err != nil {
		if ae := apiErr("DetachVolume", err); errors.Is(ae, plugin.ErrNotFound) || strings.Contains(err.Error(), "IncorrectState") {
			return nil // already detached
		}
		return apiErr("DetachVolume", err)
	}
	w := ec2.NewVolumeAvailableWaiter(c.ec2, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, c.waitOpts()); err != nil {
		return fmt.Errorf("volume %s did not detach: %w", id, err)
	}
	return nil
}

// DeleteVolume deletes the volume; a missing one wraps plugin.ErrNotFound.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	_, err := c.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	return apiErr("DeleteVolume", err)
}

// CreateSnapshot snapshots the volume and waits until it completes,
// logging its progress.
func (c *Cloud) CreateSnapshot(ctx context.Context, r plugin.SnapshotRequest) (*plugin.Snapshot, error) {
	out, err := c.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(r.VolumeID), Description: aws.String(r.Description),
		TagSpecifications: tagSpec(types.ResourceTypeSnapshot, r.Tags)})
	if err != nil {
		return nil, apiErr("CreateSnapshot", err)
	}
	id := aws.ToString(out.SnapshotId)
	last := ""
	bar := progress.Start(ctx, "EC2 snapshot "+id, 100, progress.Count)
	defer bar.Done()
	err = c.poll(ctx, "snapshot "+id, func(ctx context.Context) (bool, error) {
		s, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil {
			return false, apiErr("DescribeSnapshots", err)
		}
		if len(s.Snapshots) == 0 {
			return false, nil
		}
		sn := s.Snapshots[0]
		if p := aws.ToString(sn.Progress); p != last {
			c.log.Debug("snapshot progress", "snapshot", id, "progress", p)
			if n, err := strconv.Atoi(strings.TrimSuffix(p, "%")); err == nil {
				bar.SetCurrent(int64(n))
			}
			last = p
		}
		switch sn.State {
		case types.SnapshotStateCompleted:
			return true, nil
		case types.SnapshotStateError:
			return false, fmt.Errorf("snapshot %s failed: %s", id, aws.ToString(sn.StateMessage))
		}
		return false, nil
	})
	var snap *plugin.Snapshot
	if err == nil {
		snap, err = c.Snapshot(ctx, id)
	}
	if err != nil {
		c.ec2.DeleteSnapshot(context.WithoutCancel(ctx), &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		return nil, err
	}
	return snap, nil
}

// DeleteSnapshot deletes a snapshot; a missing one wraps plugin.ErrNotFound.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	return apiErr("DeleteSnapshot", err)
}

// RegisterInput builds the RegisterImage request (separate, so tests can
// check exactly what is sent: moto ignores most of it).
func RegisterInput(r plugin.ImageRequest) *ec2.RegisterImageInput {
	in := &ec2.RegisterImageInput{
		Name: aws.String(r.Name), Description: aws.String(r.Description),
		Architecture: types.ArchitectureValues(r.Architecture), RootDeviceName: aws.String(r.RootDeviceName),
		VirtualizationType: aws.String(r.VirtualizationType),
	}
	if r.VirtualizationType == "" {
		in.VirtualizationType = aws.String("hvm")
	}
	if aws.ToString(in.VirtualizationType) == "paravirtual" {
		if r.KernelID != "" {
			in.KernelId = aws.String(r.KernelID)
		}
		if r.RamdiskID != "" {
			in.RamdiskId = aws.String(r.RamdiskID)
		}
	} else {
		if r.EnaSupport {
			in.EnaSupport = aws.Bool(true)
		}
		if r.SriovNetSupport {
			in.SriovNetSupport = aws.String("simple")
		}
	}
	if r.BootMode != "" {
		in.BootMode = types.BootModeValues(r.BootMode)
	}
	if r.TPMSupport {
		in.TpmSupport = types.TpmSupportValuesV20
	}
	if r.IMDSv2Required {
		in.ImdsSupport = types.ImdsSupportValuesV20
	}
	for _, b := range r.BlockDevices {
		m := types.BlockDeviceMapping{DeviceName: aws.String(b.DeviceName)}
		if b.VirtualName != "" {
			m.VirtualName = aws.String(b.VirtualName)
		} else {
			e := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(b.DeleteOnTermination)}
			if b.SnapshotID != "" {
				e.SnapshotId = aws.String(b.SnapshotID)
			}
			if b.VolumeSizeGiB > 0 {
				e.VolumeSize = aws.Int32(int32(b.VolumeSizeGiB))
			}
			if b.VolumeType != "" && b.VolumeType != "local" {
				e.VolumeType = types.VolumeType(b.VolumeType)
			}
			m.Ebs = e
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, m)
	}
	return in
}

// RegisterImage registers the image, tags it and waits until it is
// available. A taken name is an error, or, with duplicate_names: number,
// retried as NAME-1, NAME-2, ... as the original tool did.
func (c *Cloud) RegisterImage(ctx context.Context, r plugin.ImageRequest) (*plugin.Image, error) {
	base := r.Name
	for n := 0; ; n++ {
		if n > 0 {
			r.Name = fmt.Sprintf("%s-%d", base, n)
		}
		taken, err := c.nameTaken(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		if taken {
			if c.s.DuplicateNames == "number" && n < 100 {
				continue
			}
			return nil, fmt.Errorf("register image: the name %q is taken in %s; pick another with -n or -s: %w", r.Name, c.region, plugin.ErrExists)
		}
		in := RegisterInput(r)
		// Tagged as it is created: a bake killed right after RegisterImage
		// leaves no untagged image that gc could not attribute.
		in.TagSpecifications = tagSpec(types.ResourceTypeImage, r.Tags)
		out, err := c.ec2.RegisterImage(ctx, in)
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "InvalidAMIName.Duplicate" {
				if c.s.DuplicateNames == "number" && n < 100 {
					continue
				}
				return nil, fmt.Errorf("register image: the name %q is taken: %w", r.Name, plugin.ErrExists)
			}
			return nil, apiErr("RegisterImage", err)
		}
		id := aws.ToString(out.ImageId)
		fail := func(err error) (*plugin.Image, error) {
			c.ec2.DeregisterImage(context.WithoutCancel(ctx), &ec2.DeregisterImageInput{ImageId: aws.String(id)})
			return nil, err
		}
		w := ec2.NewImageAvailableWaiter(c.ec2, func(o *ec2.ImageAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
		if err := w.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}, c.waitOpts()); err != nil {
			return fail(fmt.Errorf("image %s did not become available: %w", id, err))
		}
		im, err := c.Image(ctx, plugin.ImageQuery{ID: id})
		if err != nil {
			return fail(err)
		}
		if len(r.Tags) > 0 && len(im.Tags) < len(r.Tags) { // an API that ignores TagSpecifications (moto)
			if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(r.Tags)}); err != nil {
				return fail(apiErr("CreateTags", err))
			}
			im.Tags = r.Tags
		}
		return im, nil
	}
}

func (c *Cloud) nameTaken(ctx context.Context, name string) (bool, error) {
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	if err != nil {
		return false, apiErr("DescribeImages", err)
	}
	return len(out.Images) > 0, nil
}

// DeregisterImage deregisters an image.
func (c *Cloud) DeregisterImage(ctx context.Context, id string) error {
	if _, err := c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil {
		return apiErr("DeregisterImage", err)
	}
	return nil
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

var _ plugin.Cloud = (*Cloud)(nil)
