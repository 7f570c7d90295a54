package bakery

import (
	"errors"
	"time"
)

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

	// Images are every image a completed bake made: one, or one per
	// architecture of a request for several (ImageID is the first's); of
	// a failed one with KeepPartial, those it kept.
	Images []Image `json:"images,omitempty"`
	// Provenance is the worker's verification of the image (the first
	// that failed, of several): nil when it was not checked.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Image is an image a bake made.
type Image struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Arch string `json:"arch,omitempty"`
	// Provenance is this image's verification (nil: not checked).
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Provenance is what the worker found when it verified a new image as
// aminate verify does, against the bakery's trust file: OK when the
// image's own provenance is signed by a trusted signer and names its
// disk and SBOMs as they are. A failure does not fail the bake.
type Provenance struct {
	OK     bool   `json:"ok"`
	Signer string `json:"signer,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
	Error  string `json:"error,omitempty"`
	// LineageOK says every ancestor passed too (an imported base has
	// no provenance, so an image baked on one has LineageOK false).
	LineageOK bool `json:"lineage_ok"`
	// Lineage is one verdict per image: the image, then its ancestors.
	Lineage []Verdict `json:"lineage,omitempty"`
}

// Verdict is one image's verification in a lineage.
type Verdict struct {
	Image   string `json:"image"`
	OK      bool   `json:"ok"`
	Signer  string `json:"signer,omitempty"`
	KeyID   string `json:"key_id,omitempty"`
	Package string `json:"package,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Done reports whether the bake has ended.
func (r *Record) Done() bool {
	return r.State == Completed || r.State == Failed || r.State == Canceled
}

// ErrNotFound says a bake (or a token, a log) does not exist.
var ErrNotFound = errors.New("not found")

// Newer orders records newest first: by creation time, then by id.
func Newer(a, b *Record) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.ID > b.ID
}

// Stage is one stage of a running or ended bake, as its log announced
// it (the `==> name` lines of a terminal: INFO "stage NAME" stage=NAME).
// A stage ends when the next starts, or when the bake ends.
type Stage struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
}
