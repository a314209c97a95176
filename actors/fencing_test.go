package actors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/wire"
)

// TestFencingTwoActivations forces what disthash does on a membership change
// or after a paused node resumes (docs/architecture.md): two live activations of
// one conversation against one database. Two clusters that cannot see each
// other (separate agents) each activate the same identity. PostgreSQL is the
// arbiter: the activation with the older epoch fails its append, stops, the
// caller's retry reaches a fresh activation that wins, and the journal never
// forks.
func TestFencingTwoActivations(t *testing.T) {
	url := newDatabase(t)
	a := startNode(t, url, nil, Config{})
	b := startNode(t, url, nil, Config{})
	tn := newTenantIDs(t, a.store, "Fence")
	const phone = "+14155550111"
	id := convID(tn.inbox, phone)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	send := func(n *tnode, body, key string) Result {
		t.Helper()
		res, err := n.engine.command(ctx, inboundCmd(tn, phone, body, key))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return res
	}
	// A activates (epoch 1) and appends v1; B activates the same identity
	// (epoch 2, fencing A out), restores v1 and appends v2.
	if v := decodeSummary(t, send(a, "a1", "k-a1").Summary).Version; v != 1 {
		t.Fatalf("a1 at version %d", v)
	}
	staleA := a.node.Cluster.Get(id, KindConversation)
	if v := decodeSummary(t, send(b, "b1", "k-b1").Summary).Version; v != 2 {
		t.Fatalf("b1 at version %d", v)
	}
	if a.deps.Metrics.ActiveConversations() != 1 || b.deps.Metrics.ActiveConversations() != 1 {
		t.Fatalf("want one live activation on each side, got %d and %d",
			a.deps.Metrics.ActiveConversations(), b.deps.Metrics.ActiveConversations())
	}

	// A's activation still believes it is at v1 under epoch 1: its append of
	// v2 is fenced. The raw reply (no Engine retry) shows it.
	cmdA2 := inboundCmd(tn, phone, "a2", "k-a2")
	res, err := a.node.Request(ctx, KindConversation, id, cmdA2)
	if err != nil {
		t.Fatal(err)
	}
	reply := res.(*actorpb.ConversationReply)
	if reply.Error == nil || wire.Code(reply.Error.Code) != codeRetry || !strings.Contains(reply.Error.Message, "fenced") {
		t.Fatalf("stale activation's append: reply %v, want a fenced retry", reply)
	}
	if n := testutil.ToFloat64(a.deps.Metrics.Fenced); n != 1 {
		t.Fatalf("fenced appends on A: %v, want 1", n)
	}
	// It stops: the activation is gone from A's placement and its PID is dead.
	poll.Until(t, 5*time.Second, "the fenced activation to stop", func() bool {
		return a.deps.Metrics.ActiveConversations() == 0 && a.node.Cluster.GetClusterKind(KindConversation).Count() == 0
	})
	_, err = a.node.System.Root.RequestFuture(staleA, getCmd(tn, id), time.Second).Result()
	if !errors.Is(err, actor.ErrDeadLetter) {
		t.Fatalf("request to the fenced PID %s: %v, want a dead letter", staleA, err)
	}

	// The caller's retry (same command, same idempotency key) reaches a
	// fresh activation, which restores v2 and appends the message as v3.
	res2, err := a.engine.command(ctx, cmdA2)
	if err != nil {
		t.Fatal(err)
	}
	if it := decodeItem(t, res2.Item); it.Seq != 3 || it.Body != "a2" || res2.Duplicate {
		t.Fatalf("retried a2: item %+v duplicate %v, want seq 3", it, res2.Duplicate)
	}
	if live := a.node.Cluster.Get(id, KindConversation); live.Equal(staleA) {
		t.Fatalf("retry answered by the fenced PID %s", live)
	}

	// Now B's activation is the stale one. Through the Engine the whole
	// cycle is invisible to the caller: fenced, stopped, retried, committed.
	res3 := send(b, "b2", "k-b2")
	if it := decodeItem(t, res3.Item); it.Seq != 4 || it.Body != "b2" {
		t.Fatalf("b2: item %+v, want seq 4", it)
	}
	if n := testutil.ToFloat64(b.deps.Metrics.Fenced); n != 1 {
		t.Fatalf("fenced appends on B: %v, want 1", n)
	}

	// No fork: versions 1..4, each once, in the order the winners wrote them;
	// the events the stale activations decided (a2 at v2, b2 at v3) are absent.
	journalCheck(t, a.store, id, 4)
	rows, err := a.store.Pool().Query(ctx, `SELECT version, event->'item'->>'body' FROM journal
		WHERE conversation_id = $1 ORDER BY version`, id)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for rows.Next() {
		var v int64
		var body string
		if err := rows.Scan(&v, &body); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(bodies, ",") != "a1,b1,a2,b2" {
		t.Fatalf("journal bodies by version: %v, want a1,b1,a2,b2", bodies)
	}
	var items, epoch int64
	if err := a.store.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM items WHERE conversation_id = $1),
		(SELECT epoch FROM conversation_heads WHERE conversation_id = $1)`, id).Scan(&items, &epoch); err != nil {
		t.Fatal(err)
	}
	if items != 4 || epoch != 4 {
		t.Fatalf("items %d (want 4), epoch %d (want 4: four activations)", items, epoch)
	}
	// The live activation (B's) serves the head.
	res4, err := b.engine.command(ctx, getCmd(tn, id))
	if err != nil {
		t.Fatal(err)
	}
	if v := decodeSummary(t, res4.Summary).Version; v != 4 {
		t.Fatalf("live activation reads version %d, want 4", v)
	}
}
