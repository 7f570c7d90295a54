package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/bakery/broker"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// bakeryCommand administers a bakery through its NATS: API tokens and
// the audit log. Whoever holds the NATS credentials is trusted here.
func (a *app) bakeryCommand() *cobra.Command {
	var o broker.ClientOptions
	cmd := &cobra.Command{Use: "bakery", Short: "Administer the bakery: API tokens and the audit log (through its NATS)",
		Long: `Administer the bakery through its NATS JetStream: with --nats and
--nats-creds, or by default the embedded server of aminate serve on this
host (its URL and key in STATE/nats).`}
	natsFlags(cmd.PersistentFlags(), &o)
	token := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	token.AddCommand(a.tokenCreateCommand(&o), a.tokenListCommand(&o), a.tokenRevokeCommand(&o))
	cmd.AddCommand(token, a.auditCommand(&o))
	return cmd
}

// openBakery connects to the bakery's store for cmd.
func (a *app) openBakery(cmd *cobra.Command, o *broker.ClientOptions) (*store.Store, func(), error) {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	if o.URL == "" {
		if *o, err = broker.EmbeddedClient(filepath.Join(cfg.StateDir, "nats")); err != nil {
			return nil, nil, usageError{err}
		}
	}
	nc, err := o.Connect("aminate bakery")
	if err != nil {
		return nil, nil, err
	}
	s, err := store.Attach(cmd.Context(), nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	s.Logger = a.logger(cfg.Context.Debug)
	return s, func() { nc.Drain() }, nil
}

// actor names who runs a command, for the audit log.
func actor() string {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

func (a *app) tokenCreateCommand(o *broker.ClientOptions) *cobra.Command {
	var team string
	var admin bool
	cmd := &cobra.Command{Use: "create --team NAME [--admin]", Short: "Make an API token for a team and print it (once: only its hash is kept)",
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if team == "" {
				return usagef("give --team")
			}
			store, done, err := a.openBakery(cmd, o)
			if err != nil {
				return err
			}
			defer done()
			secret, t, err := store.CreateToken(cmd.Context(), team, admin, actor())
			if err != nil {
				return usageError{err}
			}
			return a.print(map[string]any{"token": secret, "id": t.ID, "team": t.Team, "admin": t.Admin}, func() {
				fmt.Fprintln(a.stdout, secret)
				fmt.Fprintf(a.stderr, "token %s for team %s: it is shown only now; send it as \"Authorization: Bearer TOKEN\"\n", t.ID, t.Team)
			})
		}}
	cmd.Flags().StringVar(&team, "team", "", "the team whose bakes the token sees and makes")
	cmd.Flags().BoolVar(&admin, "admin", false, "the token sees and cancels every team's bakes and reads the audit log")
	return cmd
}

func (a *app) tokenListCommand(o *broker.ClientOptions) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List API tokens (their ids and teams; the tokens themselves are not kept)",
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, done, err := a.openBakery(cmd, o)
			if err != nil {
				return err
			}
			defer done()
			tokens, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			return printList(a, tokens, "ID\tTEAM\tADMIN\tCREATED\tBY", func(t *store.Token) []string {
				return []string{t.ID, t.Team, strconv.FormatBool(t.Admin), age(t.Created), t.By}
			})
		}}
}

func (a *app) tokenRevokeCommand(o *broker.ClientOptions) *cobra.Command {
	return &cobra.Command{Use: "revoke ID...", Short: "Revoke API tokens: requests with them are refused from now on",
		Args: a.args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, done, err := a.openBakery(cmd, o)
			if err != nil {
				return err
			}
			defer done()
			for _, id := range args {
				if err := store.RevokeToken(cmd.Context(), id, actor()); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "revoked token %s\n", id)
			}
			return nil
		}}
}

func (a *app) auditCommand(o *broker.ClientOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "audit", Short: "Print the audit log: who submitted, cancelled, created or revoked what, and when",
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, done, err := a.openBakery(cmd, o)
			if err != nil {
				return err
			}
			defer done()
			entries, err := st.AuditLog(context.WithoutCancel(cmd.Context()), limit)
			if err != nil {
				return err
			}
			return printList(a, entries, "TIME\tACTOR\tTEAM\tACTION\tTARGET\tDETAIL", func(e store.AuditEntry) []string {
				return []string{age(e.Time), e.Actor, e.Team, e.Action, e.Target, e.Detail}
			})
		}}
	cmd.Flags().IntVar(&limit, "limit", 100, "the last N entries")
	return cmd
}
