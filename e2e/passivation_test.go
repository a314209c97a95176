package e2e

import (
	"bufio"
	"context"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// scrapeMetric reads one sample of the node's /metrics ("name" or
// `name{label="value"}`); -1 when absent.
func scrapeMetric(t *testing.T, base, sample string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// TestPassivationKeepsState: with a 200ms idle timeout (the node's
// SWITCHBOARD_IDLE_TIMEOUT), a conversation actor snapshots and stops when
// idle; the next request reactivates it from the snapshot with its state,
// idempotency and version sequence intact.
func TestPassivationKeepsState(t *testing.T) {
	n := testNode(t, func(c *server.Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Idle")
	k := c.with(tn.key)
	path := "/v1/inboxes/" + tn.inbox + "/messages"
	contact := map[string]any{"phone": "+14155550177", "name": "Grace"}
	first := k.must(201, "POST", path, map[string]any{"contact": contact, "body": "one", "external_id": "idle-1"})
	id := first["conversation_id"].(string)
	k.must(201, "POST", path, map[string]any{"contact": contact, "body": "two", "external_id": "idle-2"})
	k.must(201, "POST", "/v1/conversations/"+id+"/messages", map[string]any{"body": "hi Grace", "client_id": "cl-idle-1"})
	k.must(200, "PATCH", "/v1/conversations/"+id, map[string]any{"status": "pending", "tags_add": []string{"vip"}, "assignee_id": tn.agentID})
	before := k.must(200, "GET", "/v1/conversations/"+id, nil)
	if before["version"].(float64) != 4 {
		t.Fatalf("before passivation: %v", before)
	}

	// Passivation is observable: the counter moves, no conversation is
	// active, and the snapshot holds version 4.
	ctx := context.Background()
	snapshotAt := func() int64 {
		var v int64
		err := n.Store().Pool().QueryRow(ctx, `SELECT version FROM snapshots WHERE conversation_id = $1`, id).Scan(&v)
		if err != nil {
			return 0
		}
		return v
	}
	var passivations, active float64
	var snapshot int64
	defer func() {
		if t.Failed() {
			t.Logf("last seen: passivations %v, active %v, snapshot at %d", passivations, active, snapshot)
		}
	}()
	poll.Until(t, 10*time.Second, "passivation", func() bool {
		passivations = scrapeMetric(t, n.URL(), "switchboard_conversation_passivations_total")
		active = scrapeMetric(t, n.URL(), `switchboard_actor_activations{kind="conversation"}`)
		snapshot = snapshotAt()
		return passivations >= 1 && active == 0 && snapshot == 4
	})

	// Reactivation restores the same state from the snapshot (no tail to read).
	rowsRead := n.Store().JournalRowsRead.Load()
	after := k.must(200, "GET", "/v1/conversations/"+id, nil)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed across passivation:\nbefore %v\nafter  %v", before, after)
	}
	if read := n.Store().JournalRowsRead.Load() - rowsRead; read != 0 {
		t.Fatalf("reactivation read %d journal rows; the snapshot is at the head", read)
	}
	if active := scrapeMetric(t, n.URL(), `switchboard_actor_activations{kind="conversation"}`); active != 1 {
		t.Fatalf("active conversations after reactivation: %v", active)
	}
	// Idempotency survives: the first external_id answers with the original.
	dup := k.must(200, "POST", path, map[string]any{"contact": contact, "body": "one", "external_id": "idle-1"})
	if dup["message"].(map[string]any)["id"] != first["message"].(map[string]any)["id"] {
		t.Fatalf("duplicate after reactivation: %v", dup)
	}
	// Versions continue at 5 with the restored state underneath.
	next := k.must(201, "POST", path, map[string]any{"contact": contact, "body": "three", "external_id": "idle-3"})
	conv := next["conversation"].(map[string]any)
	msg := next["message"].(map[string]any)
	if msg["seq"].(float64) != 5 || conv["version"].(float64) != 5 || conv["assignee_id"] != tn.agentID ||
		!reflect.DeepEqual(conv["tags"], []any{"vip"}) || conv["contact"].(map[string]any)["name"] != "Grace" {
		t.Fatalf("after reactivation: %v", next)
	}
	var count, hi int64
	if err := n.Store().Pool().QueryRow(ctx, `SELECT count(*), max(version) FROM journal WHERE conversation_id = $1`, id).
		Scan(&count, &hi); err != nil {
		t.Fatal(err)
	}
	if count != 5 || hi != 5 {
		t.Fatalf("journal: %d rows up to version %d, want 5", count, hi)
	}
}
