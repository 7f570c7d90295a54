package store

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The audit log's stream; entries go to auditStem + action.
const (
	AuditStream = "AMINATOR_AUDIT"
	auditStem   = "aminator.audit."
)

// AuditEntry says who did what, and when.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Actor: "token:ID" for the API, "cli:USER@HOST" for the commands.
	Actor string `json:"actor"`
	// Team the action concerns (the requester's, or the token's).
	Team string `json:"team,omitempty"`
	// Action: submit, cancel, token.create, token.revoke.
	Action string `json:"action"`
	// Target: a bake or token id.
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Audit appends an entry to the audit log and writes it to the store's
// logger. A failure to store it is logged, not returned: the action
// itself is done.
func (s *Store) Audit(ctx context.Context, e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("audit", "actor", e.Actor, "team", e.Team, "action", e.Action, "target", e.Target, "detail", e.Detail)
	b, _ := json.Marshal(e)
	if _, err := s.JS.Publish(context.WithoutCancel(ctx), auditStem+e.Action, b); err != nil {
		log.Error("audit log", "err", err, "action", e.Action, "target", e.Target)
	}
}

// AuditLog returns the last entries of the audit log, oldest first, at
// most limit.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	info, err := s.audit.Info(ctx)
	if err != nil {
		return nil, err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if last == 0 || info.State.Msgs == 0 {
		return []AuditEntry{}, nil
	}
	if limit > 0 && last-first+1 > uint64(limit) {
		first = last - uint64(limit) + 1
	}
	out := []AuditEntry{}
	for seq := first; seq <= last; seq++ {
		m, err := s.audit.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out or removed
		}
		if err != nil {
			return nil, err
		}
		var e AuditEntry
		if json.Unmarshal(m.Data, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
