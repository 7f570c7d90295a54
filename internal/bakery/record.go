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
}

// Image is an image a bake made.
type Image struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Arch string `json:"arch,omitempty"`
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
