package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
)

// Identity is who makes a request: a team's token, or an admin's.
type Identity struct {
	Team    string `json:"team"`
	TokenID string `json:"token_id"`
	Admin   bool   `json:"admin,omitempty"`
}

// Token is an API token as stored: its SHA-256, never the token itself.
type Token struct {
	ID      string    `json:"id"`
	Team    string    `json:"team"`
	Admin   bool      `json:"admin,omitempty"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	// By says who made it (the audit actor).
	By string `json:"created_by,omitempty"`
}

var teamRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// TokenPrefix starts every token, so a leaked one is easy to find.
const TokenPrefix = "amt_"

// ErrUnauthorized says a request has no valid token.
var ErrUnauthorized = errors.New("unauthorized")

// CreateToken makes a token for a team and returns it: the secret part
// is 32 random bytes, shown once; the store keeps only its hash.
func (s *Store) CreateToken(ctx context.Context, team string, admin bool, by string) (secret string, t *Token, err error) {
	if !teamRE.MatchString(team) {
		return "", nil, fmt.Errorf("team %q: 1-63 of lower-case letters, digits, _ and -", team)
	}
	idb, key := make([]byte, 8), make([]byte, 32)
	rand.Read(idb)
	rand.Read(key)
	sum := sha256.Sum256(key)
	t = &Token{ID: hex.EncodeToString(idb), Team: team, Admin: admin, SHA256: hex.EncodeToString(sum[:]), Created: time.Now().UTC(), By: by}
	b, _ := json.Marshal(t)
	if _, err := s.tokens.Create(ctx, t.ID, b); err != nil {
		return "", nil, fmt.Errorf("store token: %w", err)
	}
	s.Audit(ctx, AuditEntry{Actor: by, Action: "token.create", Team: team, Target: t.ID, Detail: fmt.Sprintf("admin=%v", admin)})
	return TokenPrefix + t.ID + "_" + base64.RawURLEncoding.EncodeToString(key), t, nil
}

// Tokens lists the tokens, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]*Token, error) {
	keys, err := s.tokens.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Token
	for k := range keys.Keys() {
		if t, err := s.token(ctx, k); err == nil {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (s *Store) token(ctx context.Context, id string) (*Token, error) {
	e, err := s.tokens.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var t Token
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return nil, fmt.Errorf("token %s: %w", id, err)
	}
	return &t, nil
}

// RevokeToken removes a token: the next request with it is refused.
func (s *Store) RevokeToken(ctx context.Context, id, by string) error {
	t, err := s.token(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return fmt.Errorf("no token %s: %w", id, bakery.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if err := s.tokens.Purge(ctx, id); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.Audit(ctx, AuditEntry{Actor: by, Action: "token.revoke", Team: t.Team, Target: id})
	return nil
}

// Authenticate finds who a bearer token belongs to; the hash is
// compared in constant time.
func (s *Store) Authenticate(ctx context.Context, bearer string) (Identity, error) {
	rest, ok := strings.CutPrefix(bearer, TokenPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	key, err := base64.RawURLEncoding.DecodeString(secret)
	if !ok || !ok2 || err != nil || len(key) != 32 || len(id) != 16 {
		return Identity{}, fmt.Errorf("malformed token: %w", ErrUnauthorized)
	}
	t, err := s.token(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return Identity{}, fmt.Errorf("unknown or revoked token: %w", ErrUnauthorized)
		}
		return Identity{}, err
	}
	want, _ := hex.DecodeString(t.SHA256)
	sum := sha256.Sum256(key)
	if subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return Identity{}, fmt.Errorf("unknown or revoked token: %w", ErrUnauthorized)
	}
	return Identity{Team: t.Team, TokenID: t.ID, Admin: t.Admin}, nil
}

// Sees says whether an identity may see a bake: its own team's, or any
// for an admin.
func (i Identity) Sees(r *bakery.Record) bool { return i.Admin || (i.Team != "" && r.Team == i.Team) }

// Actor names the identity in the audit log.
func (i Identity) Actor() string { return "token:" + i.TokenID }
