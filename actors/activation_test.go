package actors

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// TestActivationReadsSnapshotAndTail activates a conversation with 100,000
// events in its journal and a snapshot 7 events behind the head: activation
// reads the snapshot and exactly the 7 tail rows (docs/architecture.md, invariant 8).
func TestActivationReadsSnapshotAndTail(t *testing.T) {
	const events, tail = 100_000, 7
	url := newDatabase(t)
	n := startNode(t, url, nil, Config{})
	tn := newTenantIDs(t, n.store, "Long history")
	const phone = "+14155550142"
	id := convID(tn.inbox, phone)
	start := time.Now()
	_, final := bulkConversation(t, n.store, tn, phone, events, events-tail)
	t.Logf("bulk-loaded %d events in %s", events, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := n.store.JournalRowsRead.Load()
	start = time.Now()
	res, err := n.engine.command(ctx, getCmd(tn, id))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if read := n.store.JournalRowsRead.Load() - before; read != tail {
		t.Fatalf("activation read %d journal rows, want the %d after the snapshot", read, tail)
	}
	got := decodeSummary(t, res.Summary)
	if got.Version != events {
		t.Fatalf("restored version %d, want %d", got.Version, events)
	}
	want, _ := json.Marshal(final)
	if string(res.Summary) != string(want) {
		t.Fatalf("restored summary differs from the state machine's:\ngot  %s\nwant %s", res.Summary, want)
	}
	t.Logf("activation of a %d-event history: %s (first command to reply)", events, took)

	// The restored activation continues the history at the next version.
	res, err = n.engine.command(ctx, inboundCmd(tn, phone, "after the tail", "k-next"))
	if err != nil {
		t.Fatal(err)
	}
	if it := decodeItem(t, res.Item); it.Seq != events+1 {
		t.Fatalf("next message at seq %d, want %d", it.Seq, events+1)
	}
	if read := n.store.JournalRowsRead.Load() - before; read != tail {
		t.Fatalf("journal rows read grew to %d after a write", read)
	}
	journalCheck(t, n.store, id, events+1)
}

// BenchmarkActivation1M measures the activation of a conversation whose
// journal holds 1,000,000 events, with a snapshot 7 events behind the head:
// the time from the first command (a Get) to its reply, for a fresh
// activation each iteration (the previous one is stopped and the snapshot
// reset between iterations, outside the timer). full_replay is the cost the
// snapshot avoids: reading and applying the whole journal.
//
//	go test -run '^$' -bench Activation1M ./actors
func BenchmarkActivation1M(b *testing.B) {
	const events, tail = 1_000_000, 7
	url := newDatabase(b)
	n := startNode(b, url, nil, Config{})
	tn := newTenantIDs(b, n.store, "Million")
	const phone = "+14155550143"
	id := convID(tn.inbox, phone)
	start := time.Now()
	snap, _ := bulkConversation(b, n.store, tn, phone, events, events-tail)
	b.Logf("bulk-loaded %d events in %s; snapshot %d bytes", events, time.Since(start).Round(time.Millisecond), len(snap))
	ctx := context.Background()

	b.Run("snapshot+tail", func(b *testing.B) {
		kind := n.node.Cluster.GetClusterKind(KindConversation)
		read0 := n.store.JournalRowsRead.Load()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := n.engine.command(ctx, getCmd(tn, id))
			if err != nil {
				b.Fatal(err)
			}
			if v := decodeSummary(b, res.Summary).Version; v != events {
				b.Fatalf("version %d", v)
			}
			b.StopTimer()
			// Stop the activation (its Stopped handler snapshots at the
			// head) and wait until the placement has forgotten it and the
			// writer has stored that snapshot (off the actor's path: put
			// back too early, it would be overwritten), then put the
			// snapshot back 7 events behind.
			pid := n.node.Cluster.Get(id, KindConversation)
			if err := n.node.System.Root.PoisonFuture(pid).Wait(); err != nil {
				b.Fatal(err)
			}
			poll.Until(b, 5*time.Second, "the activation to stop", func() bool { return kind.Count() == 0 })
			poll.Until(b, 5*time.Second, "the stop's snapshot at the head", func() bool {
				var v int64
				err := n.store.Pool().QueryRow(ctx, `SELECT version FROM snapshots WHERE conversation_id = $1`, id).Scan(&v)
				return err == nil && v == events
			})
			if _, err := n.store.Pool().Exec(ctx, `UPDATE snapshots SET version = $2, state = $3 WHERE conversation_id = $1`,
				id, events-tail, snap); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.StopTimer()
		if b.N > 0 {
			b.ReportMetric(float64(n.store.JournalRowsRead.Load()-read0)/float64(b.N), "journal-rows/op")
		}
	})

	b.Run("full_replay", func(b *testing.B) {
		if _, err := n.store.Pool().Exec(ctx, `DELETE FROM snapshots WHERE conversation_id = $1`, id); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			a, err := n.store.Activate(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			st := &conversation.State{}
			for j := range a.Events {
				conversation.Apply(st, &a.Events[j])
			}
			if st.Version() != events {
				b.Fatalf("replayed to %d", st.Version())
			}
		}
	})
}
