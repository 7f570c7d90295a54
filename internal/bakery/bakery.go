// Package bakery serves bake requests for many teams in several regions,
// as Netflix's Bakery and Spinnaker's Rosco do: an HTTP API takes
// requests, a NATS JetStream work queue per region carries them to
// workers, and a JetStream key-value bucket holds every bake's record,
// shared by all API servers and workers. Identical requests are served
// from what is running or done (the key includes the resolved base image,
// so a new base release does trigger a new bake — Rosco's known weakness),
// concurrent identical requests collapse into one bake, and a bake can be
// cancelled. Workers check each request again and run its bake in a child
// aminate process, handing it the request typed (a Job, as JSON on its
// standard input); the child bakes through the same service functions as
// `aminate bake`, so a bake gets the CLI's namespaces and cleanup, and a
// crash of one bake cannot take the worker down.
//
// It is safe to run for many teams: every API call needs a team's token
// (auth.go; only their hashes are stored), a team sees its own bakes only,
// the API refuses foreign Host headers and bodies that are not JSON
// (guard.go), requests and teams have limits (limits.go), the embedded NATS
// takes only the key it generated (natsconn.go), workers check every
// request again and stop a bake at its timeout, and who did what goes to an
// audit stream (audit.go).
package bakery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/image/imageref"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/sys/confine"
)

// Request is what a team asks for.
type Request struct {
	Package string `json:"package"`
	// PackageSHA256 (hex) is what a package file's or URL's bytes must
	// hash to. For a file under --package-dir the API sets it to the
	// file's digest at submission (see PinPackage), so the bake uses
	// exactly the bytes the request's key was made of.
	PackageSHA256 string `json:"package_sha256,omitempty"`
	// Base: an id, a name, or a family with a channel label.
	BaseID    string `json:"base_id,omitempty"`
	BaseName  string `json:"base_name,omitempty"`
	BaseLabel string `json:"base_label,omitempty"`
	Region    string `json:"region"`
	// Environment is the aminator environment to bake with ("" default).
	Environment string            `json:"environment,omitempty"`
	Name        string            `json:"name,omitempty"`
	VMType      string            `json:"vm_type,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Rebake bakes even if an identical request is running or done.
	Rebake bool `json:"rebake,omitempty"`
	// CI metadata (build host, job, build number, commit, URL), recorded
	// as tags on the image; not part of the identity of the request.
	CI map[string]string `json:"ci,omitempty"`
	// TimeoutSeconds stops the bake (with its cleanup) after this long
	// (0: the bakery's default); at most the bakery's maximum.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// BaseRef is the base image the request names.
func (r *Request) BaseRef() imageref.Ref {
	switch {
	case r.BaseID != "":
		return imageref.Ref{ID: r.BaseID}
	case r.BaseLabel != "":
		return imageref.Ref{Name: r.BaseName, Label: r.BaseLabel}
	}
	return imageref.Parse(r.BaseName)
}

// States of a bake.
const (
	Queued    = "queued"
	Running   = "running"
	Completed = "completed"
	Failed    = "failed"
	Canceled  = "canceled"
)

// Record is a bake as the bakery knows it.
type Record struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	// Team owns the bake (the team of the token that asked for it);
	// TokenID is that token's id.
	Team     string  `json:"team,omitempty"`
	TokenID  string  `json:"token_id,omitempty"`
	Request  Request `json:"request"`
	BaseID   string  `json:"resolved_base_id,omitempty"`
	State    string  `json:"state"`
	ImageID  string  `json:"image_id,omitempty"`
	Image    string  `json:"image_name,omitempty"`
	Error    string  `json:"error,omitempty"`
	Worker   string  `json:"worker,omitempty"`
	Cancel   bool    `json:"cancel_requested,omitempty"`
	Attempts int     `json:"attempts"`
	// Stages are the bake's stages so far, as its log announced them.
	Stages   []Stage   `json:"stages,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitempty"`
	Finished time.Time `json:"finished,omitempty"`
}

// Done reports whether the bake has ended.
func (r *Record) Done() bool {
	return r.State == Completed || r.State == Failed || r.State == Canceled
}

var (
	regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	tagKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:/+@-]{1,100}$`)
)

// reserved says whether a request may not set a tag: the tags a bake sets
// itself (naming.ToolTags: a request tagging its image channel=release
// would become every team's base) and the bakery's own bakery_id.
func reserved(key string) bool {
	_, ok := naming.Reserved(key, naming.ScopeBake)
	return ok || key == "bakery_id"
}

// Validate checks a request before anything is queued. Local package
// files are accepted only under packageDir ("" accepts none): a request
// must not make the service read or bake any file of its host.
func (r *Request) Validate(packageDir string) error {
	if r.Package == "" {
		return errors.New("no package")
	}
	if strings.HasPrefix(r.Package, "-") {
		return fmt.Errorf("package %q must not start with '-'", r.Package)
	}
	if isLocal(r.Package) {
		if err := checkLocal(r.Package, packageDir); err != nil {
			return err
		}
	}
	if err := r.checkPackageSum(); err != nil {
		return err
	}
	if (r.BaseID == "") == (r.BaseName == "") {
		return errors.New("give exactly one of base_id and base_name")
	}
	if r.BaseLabel != "" && r.BaseName == "" {
		return errors.New("base_label goes with base_name")
	}
	if !regionRE.MatchString(r.Region) {
		return fmt.Errorf("region %q: lower-case letters, digits and -", r.Region)
	}
	for _, s := range []string{r.BaseID, r.BaseName, r.BaseLabel, r.Environment, r.Name, r.VMType} {
		if strings.HasPrefix(s, "-") {
			return fmt.Errorf("%q must not start with '-'", s)
		}
	}
	if err := r.checkSizes(); err != nil {
		return err
	}
	for k, v := range r.Tags {
		if !tagKeyRE.MatchString(k) || strings.ContainsRune(v, '\n') {
			return fmt.Errorf("tag %q: keys are 1-100 of letters, digits and _.:/+@-", k)
		}
		if reserved(k) {
			return fmt.Errorf("tag %q is set by aminator and cannot be requested", k)
		}
	}
	for k, v := range r.CI {
		if !tagKeyRE.MatchString(k) || strings.ContainsRune(v, '\n') {
			return fmt.Errorf("ci key %q: 1-100 of letters, digits and _.:/+@-", k)
		}
	}
	return nil
}

// isLocal says whether a package names a file (as the provisioners read it).
func isLocal(p string) bool {
	return !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") &&
		(strings.HasPrefix(p, "file://") || strings.Contains(p, "/") || strings.HasSuffix(p, ".deb") || strings.HasSuffix(p, ".rpm"))
}

func checkLocal(p, dir string) error {
	if dir == "" {
		return fmt.Errorf("package %q is a file on the bakery's host; this bakery takes repository names and http(s) URLs (serve --package-dir allows files from one directory)", p)
	}
	p = strings.TrimPrefix(p, "file://")
	clean := filepath.Clean(p)
	if !filepath.IsAbs(clean) || clean != p || !strings.HasPrefix(clean, filepath.Clean(dir)+"/") {
		return fmt.Errorf("package file %q must be a clean absolute path under %s", p, dir)
	}
	f, err := confine.Open(dir, clean) // no symlink on the way, nothing but a regular file
	if err != nil {
		return fmt.Errorf("package file: %w", err)
	}
	return f.Close()
}

// Key identifies what a request would produce: everything that changes
// the image, the resolved base and the package's digest included (a
// file's, pinned by PinPackage at submission; a URL's, when given).
func Key(r Request, baseID string) string {
	id := struct {
		Package, PackageDigest, BaseID, Region, Environment, Name, VMType string
		Tags                                                              []string
	}{Package: r.Package, PackageDigest: strings.ToLower(r.PackageSHA256), BaseID: baseID, Region: r.Region,
		Environment: r.Environment, Name: r.Name, VMType: r.VMType}
	for k, v := range r.Tags {
		id.Tags = append(id.Tags, k+"="+v)
	}
	sort.Strings(id.Tags)
	b, _ := json.Marshal(id)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Names in JetStream.
const (
	StreamName   = "AMINATOR_BAKES"
	subjectStem  = "aminator.bake."
	recordBucket = "aminator-bakes"
	keyBucket    = "aminator-bake-keys"
	logBucket    = "aminator-bake-logs"
	tokenBucket  = "aminator-bakery-tokens"
	workerBucket = "aminator-bakery-workers"
)

// Store is the shared state: the queue, the records, the logs, the API
// tokens, the live workers and the audit log.
type Store struct {
	JS      jetstream.JetStream
	records jetstream.KeyValue
	keys    jetstream.KeyValue
	logs    jetstream.ObjectStore
	tokens  jetstream.KeyValue
	workers jetstream.KeyValue
	audit   jetstream.Stream
	// Logger gets the audit entries too (nil: slog's default).
	Logger *slog.Logger
}

// Open connects the store with the default retention (DefaultRetention).
func Open(ctx context.Context, nc *nats.Conn) (*Store, error) {
	return OpenWith(ctx, nc, DefaultRetention())
}

// OpenWith connects the store, creating (or updating the limits of) the
// streams, buckets and object store: each has a size cap and, but for the
// tokens, a maximum age.
func OpenWith(ctx context.Context, nc *nats.Conn, ret Retention) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: StreamName, Subjects: []string{subjectStem + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew,
		MaxAge: ret.Queue, MaxBytes: ret.QueueBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("bake queue: %w", err)
	}
	s := &Store{JS: js}
	kv := func(bucket string, ttl time.Duration, maxBytes int64) (jetstream.KeyValue, error) {
		b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: ttl, MaxBytes: maxBytes, Replicas: ret.Replicas})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", bucket, err)
		}
		return b, nil
	}
	if s.records, err = kv(recordBucket, ret.Records, ret.RecordBytes); err != nil {
		return nil, err
	}
	if s.keys, err = kv(keyBucket, ret.Records, ret.RecordBytes); err != nil {
		return nil, err
	}
	if s.tokens, err = kv(tokenBucket, 0, ret.TokenBytes); err != nil {
		return nil, err
	}
	if s.workers, err = kv(workerBucket, workerTTL, ret.TokenBytes); err != nil {
		return nil, err
	}
	if s.logs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: logBucket, TTL: ret.Logs, MaxBytes: ret.LogBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("bake logs: %w", err)
	}
	if s.audit, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: AuditStream, Subjects: []string{auditStem + ">"},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld, MaxAge: ret.Audit, MaxBytes: ret.AuditBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return s, nil
}

// Get reads a record.
func (s *Store) Get(ctx context.Context, id string) (*Record, uint64, error) {
	e, err := s.records.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, fmt.Errorf("no bake %s: %w", id, ErrNotFound)
		}
		return nil, 0, err
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, err
	}
	return &r, e.Revision(), nil
}

// ErrNotFound says a bake does not exist.
var ErrNotFound = errors.New("not found")

// Update changes a record with optimistic concurrency: fn is applied to
// the latest version until it is stored without a conflict.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (*Record, error) {
	for attempt := 0; attempt < 20; attempt++ {
		r, rev, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(r)
		if _, err := s.records.Update(ctx, id, b, rev); err == nil {
			return r, nil
		} else if !isConflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("bake %s: too many concurrent updates", id)
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// Submit records and queues a request, or returns the bake an identical
// request already has (running, queued, or done successfully). cached
// says which. The record exists before its key points to it, and the
// client going away does not interrupt the submission half-way.
func (s *Store) Submit(ctx context.Context, req Request, baseID, id string) (rec *Record, cached bool, err error) {
	return s.SubmitAs(ctx, Identity{}, req, baseID, id)
}

// SubmitAs is Submit for a team: its bakes are its own, and identical
// requests of two teams are two bakes (one team's cache must not tell it
// what another bakes).
func (s *Store) SubmitAs(ctx context.Context, who Identity, req Request, baseID, id string) (rec *Record, cached bool, err error) {
	ctx = context.WithoutCancel(ctx)
	key := teamKey(who.Team, Key(req, baseID))
	rec = &Record{ID: id, Key: key, Team: who.Team, TokenID: who.TokenID, Request: req, BaseID: baseID, State: Queued, Created: time.Now().UTC()}
	created := false
	defer func() {
		if created && (err != nil || cached) {
			s.records.Delete(ctx, id) // ours lost the race, or failed
		}
	}()
	for attempt := 0; attempt < 10; attempt++ {
		e, err := s.keys.Get(ctx, key)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, false, err
		default:
			prev, _, gerr := s.Get(ctx, string(e.Value()))
			if gerr == nil && !req.Rebake && (!prev.Done() || prev.State == Completed) {
				return prev, true, nil
			}
			rev = e.Revision()
		}
		if !created {
			b, _ := json.Marshal(rec)
			if _, err := s.records.Create(ctx, id, b); err != nil {
				return nil, false, err
			}
			created = true
		}
		if rev == 0 {
			_, err = s.keys.Create(ctx, key, []byte(id))
		} else {
			_, err = s.keys.Update(ctx, key, []byte(id), rev)
		}
		if err != nil {
			if isConflict(err) {
				continue // another request took the key: look again
			}
			return nil, false, err
		}
		if _, err := s.JS.Publish(ctx, subjectStem+req.Region, []byte(id)); err != nil {
			s.Update(ctx, id, func(r *Record) error {
				r.State, r.Error, r.Finished = Failed, "could not queue: "+err.Error(), time.Now().UTC()
				return nil
			})
			created = false // keep the failed record: the key points to it
			return nil, false, fmt.Errorf("queue bake %s: %w", id, err)
		}
		return rec, false, nil
	}
	return nil, false, errors.New("too many concurrent identical requests")
}

// All returns every record, newest first.
func (s *Store) All(ctx context.Context) ([]*Record, error) {
	keys, err := s.records.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Record
	for k := range keys.Keys() {
		if r, _, err := s.Get(ctx, k); err == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[i], out[j]) })
	return out, nil
}

func newer(a, b *Record) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.ID > b.ID
}

// Cancel asks the worker running a bake to stop it (or marks a queued one
// cancelled so no worker starts it).
func (s *Store) Cancel(ctx context.Context, id string) (*Record, error) {
	return s.Update(ctx, id, func(r *Record) error {
		if r.Done() {
			return fmt.Errorf("bake %s already %s", id, r.State)
		}
		r.Cancel = true
		if r.State == Queued {
			r.State, r.Finished = Canceled, time.Now().UTC()
		}
		return nil
	})
}

// PutLog stores a bake's log.
func (s *Store) PutLog(ctx context.Context, id string, r io.Reader) error {
	_, err := s.logs.Put(ctx, jetstream.ObjectMeta{Name: id}, r)
	return err
}

// Log reads a bake's log.
func (s *Store) Log(ctx context.Context, id string) ([]byte, error) {
	b, err := s.logs.GetBytes(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("no log for bake %s yet: %w", id, ErrNotFound)
	}
	return b, err
}
