package bakery

import (
	"maps"
)

// QueuedBake is a bake taken off the queue, as a worker hands it to the
// child process that runs it (which runs it as a service.Job): the
// request, typed, as JSON on the child's standard input (see
// worker.ExecRunner), instead of a command line to parse.
type QueuedBake struct {
	// ID is the bakery's id of the bake; the image is tagged bakery_id=ID.
	ID string `json:"id"`
	// BaseID is the base the request resolved to when it was submitted
	// (the one its key names); "" bakes on what the request names.
	BaseID  string  `json:"base_id,omitempty"`
	Request Request `json:"request"`
	// SigningKey and TrustFile are the bakery's (aminate serve
	// --signing-key, --trust-file), never a request's: the child signs
	// the image with that key (attest.signing_key, attest.trust_file; ""
	// keeps the child's configured ones).
	SigningKey string `json:"signing_key,omitempty"`
	TrustFile  string `json:"trust_file,omitempty"`
}

// QueuedBakeOf is the queued bake of a record.
func QueuedBakeOf(r *Record) QueuedBake {
	return QueuedBake{ID: r.ID, BaseID: r.BaseID, Request: r.Request}
}

// Settings are what the queued bake sets of the bake's configuration: context
// settings by key, layered over the configuration files as the command
// line's flags are, and the image's tags (the request's, its CI metadata
// as ci_* and bakery_id), added to the configured ones.
func (j QueuedBake) Settings() (settings map[string]string, tags map[string]string) {
	q := j.Request
	settings = map[string]string{}
	for _, s := range q.Options() {
		if s.Value != "" {
			settings[s.Key] = s.Value
		}
	}
	if SplitBases(j.BaseID) != nil { // several architectures' bases: Bases gives them to the bake
		delete(settings, "base_ami_id")
	} else if j.BaseID != "" { // resolved at submission: the key's base, whatever the request named
		delete(settings, "base_ami_name")
		delete(settings, "label")
		settings["base_ami_id"] = j.BaseID
	}
	if j.SigningKey != "" {
		settings["attest.signing_key"] = j.SigningKey
	}
	if j.TrustFile != "" {
		settings["attest.trust_file"] = j.TrustFile
	}
	tags = map[string]string{"bakery_id": j.ID}
	maps.Copy(tags, q.Tags)
	for k, v := range q.CI {
		tags["ci_"+k] = v
	}
	return settings, tags
}

// Bases are the bases by architecture a request for several resolved to
// at submission (nil: one base, or none resolved).
func (j QueuedBake) Bases() map[string]string { return SplitBases(j.BaseID) }

// ChildCommand is the hidden aminate subcommand that runs one bakery bake:
// it reads a QueuedBake as JSON on its standard input.
const ChildCommand = "bakery-bake"
