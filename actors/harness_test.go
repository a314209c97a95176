package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
)

// These tests start the actor runtime: they run without -race (Makefile; the
// library has races of its own, docs/architecture.md).

func TestMain(m *testing.M) { pgtest.Main(m) }

// tnode is one cluster member with its own store, writer and actors, as a
// process of its own would have.
type tnode struct {
	deps   *Deps
	node   *cluster.Node
	engine *Engine
	store  *persistence.Store
	writer *persistence.Writer
}

func testLogger() *slog.Logger {
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newDatabase creates a migrated database for the test.
func newDatabase(t testing.TB) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := persistence.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	return url
}

// startNode starts a member on the database. Members given the same agent
// form one cluster; a nil agent makes a cluster of its own.
func startNode(t testing.TB, url string, agent *test.InMemAgent, cfg Config) *tnode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	writer := persistence.NewWriter(store.Pool(), persistence.WriterConfig{}, nil)
	log := testLogger()
	hub := listentest.Run(t, store.Pool())
	deps := &Deps{Config: cfg, Store: store, Writer: writer, Notices: hub, Log: log, Metrics: NewMetrics(nil)}
	node, err := cluster.Start(ctx, cluster.Config{Agent: agent, Logger: log, RequestTimeout: 5 * time.Second},
		NewConversationKind(deps), NewInboxKind(deps),
		NewSearchKind(SearchDeps{Pool: store.Pool(), Notices: hub, Backend: pgsearch.New(store.Pool()), Log: log}))
	if err != nil {
		_ = writer.Close(ctx)
		store.Close()
		t.Fatal(err)
	}
	deps.SetNode(node)
	catchUpCtx, stopCatchUp := context.WithCancel(context.Background())
	catchUpDone := make(chan error, 1)
	go func() { catchUpDone <- deps.CatchUpInboxes(catchUpCtx) }()
	t.Cleanup(func() {
		stopCatchUp()
		if err := <-catchUpDone; err != nil {
			t.Errorf("catch up inboxes: %v", err)
		}
		node.Stop()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := writer.Close(cctx); err != nil {
			t.Errorf("close writer: %v", err)
		}
		store.Close()
	})
	return &tnode{deps: deps, node: node, engine: NewEngine(deps), store: store, writer: writer}
}

// startCluster starts n members of one cluster on a fresh database and
// waits until each sees them all.
func startCluster(t *testing.T, n int) []*tnode {
	t.Helper()
	url := newDatabase(t)
	agent := test.NewInMemAgent()
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = startNode(t, url, agent, Config{})
	}
	poll.Until(t, 10*time.Second, fmt.Sprintf("%d members to see each other", n), func() bool {
		for _, m := range nodes {
			if m.node.Cluster.MemberList.Members().Len() != n {
				return false
			}
		}
		return true
	})
	return nodes
}

// owner is the address of the member that owns (kind, identity) in the
// membership this node sees: its rendezvous owner.
func (n *tnode) owner(kind, identity string) string {
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(n.node.Cluster.MemberList.Members().Members())
	return rdv.GetByClusterIdentity(protocluster.NewClusterIdentity(identity, kind))
}

type tenantIDs struct{ account, inbox string }

func newTenantIDs(t testing.TB, s *persistence.Store, name string) tenantIDs {
	t.Helper()
	ctx := context.Background()
	acc, _, err := s.CreateAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.CreateInbox(ctx, acc.ID, name+" inbox", "+14155550100")
	if err != nil {
		t.Fatal(err)
	}
	return tenantIDs{account: acc.ID, inbox: ib.ID}
}

// convID is the conversation of a phone contact in the inbox.
func convID(inbox, phone string) string {
	return conversation.ID(inbox, conversation.ContactKey(conversation.Contact{Phone: phone}))
}

func inboundCmd(tn tenantIDs, phone, body, key string) *actorpb.ConversationCommand {
	return &actorpb.ConversationCommand{
		ConversationId: convID(tn.inbox, phone), AccountId: tn.account, InboxId: tn.inbox, IdempotencyKey: key,
		Command: &actorpb.ConversationCommand_Inbound{Inbound: &actorpb.InboundMessage{
			Contact: &actorpb.Contact{Phone: phone}, Body: body}},
	}
}

// must runs a conversation command and fails the test if it fails.
func (n *tnode) must(ctx context.Context, t testing.TB, cmd *actorpb.ConversationCommand) {
	t.Helper()
	if _, err := n.engine.command(ctx, cmd); err != nil {
		t.Fatal(err)
	}
}

// soloNode starts a node of its own with cfg on a fresh database, and the
// tenant name; ctx gives the test a minute, and run applies a command.
func soloNode(t *testing.T, cfg Config, name string) (n *tnode, tn tenantIDs, ctx context.Context, run func(*actorpb.ConversationCommand)) {
	t.Helper()
	n = startNode(t, newDatabase(t), nil, cfg)
	tn = newTenantIDs(t, n.store, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return n, tn, ctx, func(cmd *actorpb.ConversationCommand) { t.Helper(); n.must(ctx, t, cmd) }
}

// list asks the engine for a page of the tenant's inbox: its
// conversations and its next cursor.
func (n *tnode) list(ctx context.Context, t testing.TB, tn tenantIDs, q inbox.Query) ([]conversation.Summary, string) {
	t.Helper()
	page, err := n.engine.List(ctx, tn.account, tn.inbox, "", q)
	if err != nil {
		t.Fatal(err)
	}
	var convs []conversation.Summary
	if err := json.Unmarshal(page.Conversations, &convs); err != nil {
		t.Fatal(err)
	}
	return convs, page.NextCursor
}

// closeCmd closes a phone contact's conversation in the inbox.
func closeCmd(tn tenantIDs, phone string) *actorpb.ConversationCommand {
	st := string(conversation.StatusClosed)
	return &actorpb.ConversationCommand{ConversationId: convID(tn.inbox, phone), AccountId: tn.account, InboxId: tn.inbox,
		Command: &actorpb.ConversationCommand_Update{Update: &actorpb.Update{Status: &st}}}
}

func getCmd(tn tenantIDs, id string) *actorpb.ConversationCommand {
	return &actorpb.ConversationCommand{ConversationId: id, AccountId: tn.account, InboxId: tn.inbox,
		IdempotencyKey: "get_" + randomID(), Command: &actorpb.ConversationCommand_Get{Get: &actorpb.GetConversation{}}}
}

func decodeSummary(t testing.TB, raw []byte) conversation.Summary {
	t.Helper()
	var s conversation.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("decode summary %s: %v", raw, err)
	}
	return s
}

func decodeItem(t testing.TB, raw []byte) conversation.Item {
	t.Helper()
	var it conversation.Item
	if err := json.Unmarshal(raw, &it); err != nil {
		t.Fatalf("decode item %s: %v", raw, err)
	}
	return it
}

// journalCheck asserts the journal of a conversation has no fork and no gap:
// versions 1..head, each exactly once, and the head and read-model rows agree.
func journalCheck(t testing.TB, s *persistence.Store, id string, want int64) {
	t.Helper()
	ctx := context.Background()
	var n, lo, hi, distinct int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), coalesce(min(version), 0), coalesce(max(version), 0),
		count(DISTINCT version) FROM journal WHERE conversation_id = $1`, id).Scan(&n, &lo, &hi, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != want || lo != 1 || hi != want || distinct != want {
		t.Fatalf("journal of %s: %d rows, versions %d..%d (%d distinct), want exactly 1..%d", id, n, lo, hi, distinct, want)
	}
	var head, model int64
	if err := s.Pool().QueryRow(ctx, `SELECT h.version, c.version FROM conversation_heads h
		JOIN conversations c ON c.id = h.conversation_id WHERE h.conversation_id = $1`, id).Scan(&head, &model); err != nil {
		t.Fatal(err)
	}
	if head != want || model != want {
		t.Fatalf("%s: head at %d, read model at %d, want %d", id, head, model, want)
	}
}

// bulkConversation writes a conversation with n valid events straight into
// PostgreSQL: events made by the pure state machine, the journal through
// COPY, the head and read-model rows, and a snapshot at version snapAt. It
// returns the snapshot's encoding and the final summary.
func bulkConversation(t testing.TB, s *persistence.Store, tn tenantIDs, phone string, n, snapAt int) (snapshot []byte, final conversation.Summary) {
	t.Helper()
	ctx := context.Background()
	id := convID(tn.inbox, phone)
	st := &conversation.State{}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	newID := func() string { seq++; return fmt.Sprintf("msg_bulk%09d", seq) }
	tr, fa := true, false
	src := func(i int) conversation.Command {
		cmd := conversation.Command{AccountID: tn.account, InboxID: tn.inbox, IdempotencyKey: fmt.Sprintf("b%d", i)}
		switch {
		case i%50 == 0:
			cmd.Inbound = &conversation.InboundCommand{Contact: conversation.Contact{Phone: phone}, Body: fmt.Sprintf("m%d", i)}
		case i%50 == 1:
			cmd.Reply = &conversation.ReplyCommand{Body: fmt.Sprintf("r%d", i)}
		case i%2 == 0:
			cmd.Update = &conversation.UpdateCommand{Change: conversation.Change{Addressed: &tr}}
		default:
			cmd.Update = &conversation.UpdateCommand{Change: conversation.Change{Addressed: &fa}}
		}
		return cmd
	}
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		for {
			if st.Version() == int64(n) {
				return nil, nil
			}
			ev, err := conversation.Decide(st, src(i), base.Add(time.Duration(i)*time.Millisecond), newID)
			i++
			if err != nil {
				return nil, err
			}
			if ev == nil {
				continue
			}
			conversation.Apply(st, ev)
			if st.Version() == int64(snapAt) {
				if snapshot, err = json.Marshal(st); err != nil {
					return nil, err
				}
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				return nil, err
			}
			return []any{id, ev.Version, tn.account, tn.inbox, string(ev.Type), json.RawMessage(raw)}, nil
		}
	})
	if _, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"journal"},
		[]string{"conversation_id", "version", "account_id", "inbox_id", "event_type", "event"}, rows); err != nil {
		t.Fatal(err)
	}
	if st.Version() != int64(n) || snapshot == nil {
		t.Fatalf("generated %d events (want %d), snapshot found: %v", st.Version(), n, snapshot != nil)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO conversation_heads (conversation_id, epoch, version) VALUES ($1, 0, $2)`,
		id, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO snapshots (conversation_id, version, state) VALUES ($1, $2, $3)`,
		id, snapAt, snapshot); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ApplySummary(ctx, st.Summary, st.ContactKey); err != nil || !ok {
		t.Fatalf("read model row: applied %v, %v", ok, err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE journal`); err != nil {
		t.Fatal(err)
	}
	return snapshot, st.Summary
}
