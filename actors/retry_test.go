package actors

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
)

// A command the engine or the cluster delivers again with its own
// idempotency key (a timeout, a lost reply, a fenced activation) keeps the
// first attempt's meaning: created, not duplicate. Only a client-supplied key
// seen before (external_id, client_id) makes a duplicate.
func TestInternalRetryIsNotADuplicate(t *testing.T) {
	url := newDatabase(t)
	a := startNode(t, url, nil, Config{})
	b := startNode(t, url, nil, Config{}) // a second member: a fresh activation restoring from PostgreSQL
	tn := newTenantIDs(t, a.store, "Retry")
	const phone = "+14155550177"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(n *tnode, cmd *actorpb.ConversationCommand) Result {
		t.Helper()
		res, err := n.engine.command(ctx, proto.Clone(cmd).(*actorpb.ConversationCommand))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	in := inboundCmd(tn, phone, "hello", "k-in-1")
	in.GetInbound().ExternalId = "sms-1"
	first := run(a, in)
	if first.Duplicate {
		t.Fatal("first delivery answered as a duplicate")
	}
	created := decodeItem(t, first.Item)
	for _, c := range []struct {
		name string
		n    *tnode
	}{{"same activation", a}, {"fresh activation on another member", b}} {
		again := run(c.n, in)
		if again.Duplicate {
			t.Errorf("%s: a retry with the engine's key answered as a duplicate (200), want the first attempt's 201", c.name)
		}
		if it := decodeItem(t, again.Item); it.ID != created.ID || it.Seq != 1 {
			t.Errorf("%s: retry answered item %+v, want the original %s", c.name, it, created.ID)
		}
		if v := decodeSummary(t, again.Summary).Version; v != 1 {
			t.Errorf("%s: version %d after a retry, want 1 (nothing written)", c.name, v)
		}
	}

	// The client sending the same external_id again is a duplicate.
	dup := inboundCmd(tn, phone, "hello again", "k-in-2")
	dup.GetInbound().ExternalId = "sms-1"
	if res := run(b, dup); !res.Duplicate || decodeItem(t, res.Item).ID != created.ID {
		t.Fatalf("same external_id under a new request: duplicate %v item %s, want the original", res.Duplicate, res.Item)
	}

	// The same for a reply's client_id.
	reply := &actorpb.ConversationCommand{ConversationId: convID(tn.inbox, phone), AccountId: tn.account, InboxId: tn.inbox,
		IdempotencyKey: "k-rep-1", Command: &actorpb.ConversationCommand_Reply{Reply: &actorpb.Reply{Body: "hi", ClientId: "draft-1"}}}
	if res := run(b, reply); res.Duplicate {
		t.Fatal("first reply answered as a duplicate")
	}
	if res := run(a, reply); res.Duplicate || decodeItem(t, res.Item).Seq != 2 {
		t.Fatalf("retried reply: duplicate %v item %s, want the first attempt's answer", res.Duplicate, res.Item)
	}
	reply.IdempotencyKey = "k-rep-2"
	if res := run(a, reply); !res.Duplicate || decodeItem(t, res.Item).Seq != 2 {
		t.Fatalf("same client_id under a new request: duplicate %v item %s", res.Duplicate, res.Item)
	}
	journalCheck(t, a.store, convID(tn.inbox, phone), 2)
}
