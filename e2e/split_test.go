package e2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// TestPausedMemberLeaves: a member of three (automanaged) paused for longer
// than the others' health checks allow is blocked by them for good, and it
// blocks them in turn; left alone, the cluster stayed split, each side
// serving its own copy of the inbox (different counts and lists by the
// node asked). The paused member now sees, in the views every member
// publishes to the database, that the larger side blocked it, and stops
// with exit status 1 and the reason in its log; the other two go on as a
// cluster of two. Started again (as its supervisor would), it rejoins under
// a new id, and every node lists the inbox alike.
func TestPausedMemberLeaves(t *testing.T) {
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)
	addrs := []string{addrWithNextFree(t), addrWithNextFree(t), addrWithNextFree(t)}
	start := func(i int) *crashServer {
		var seeds []string
		for j, a := range addrs {
			if j != i {
				seeds = append(seeds, a)
			}
		}
		return startSwitchboard(t, bin, dbURL, fmt.Sprintf("node%d", i), "SWITCHBOARD_CLUSTER_PROVIDER=automanaged",
			"SWITCHBOARD_NODE_ADDR="+addrs[i], "SWITCHBOARD_SEEDS="+strings.Join(seeds, ","))
	}
	nodes := []*crashServer{start(0), start(1), start(2)}
	defer func() {
		if t.Failed() {
			for i, s := range nodes {
				t.Logf("node%d log:\n%s", i, s.tail())
			}
		}
	}()
	awaitMembers(t, 3, nodes...)
	tn := newTenant(t, api{t: t, base: nodes[0].base}, "Split")
	for i := range 9 {
		api{t: t, base: nodes[i%3].base, token: tn.key}.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
			obj{"contact": phoneContact(i), "body": fmt.Sprint("before ", i)})
	}

	victim := nodes[2]
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	awaitMembers(t, 2, nodes[0], nodes[1])
	if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	awaitLeft(t, victim, resumed)
	// The other two stay, and serve.
	for i, s := range nodes[:2] {
		if n := members(t, s); n != 2 {
			t.Fatalf("node%d sees %d members after the paused one left, want 2", i, n)
		}
		api{t: t, base: s.base, token: tn.key}.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
			obj{"contact": phoneContact(20 + i), "body": "while it was away"})
	}

	// Its supervisor starts it again: a new id, let in.
	restarted := time.Now()
	nodes[2] = start(2)
	awaitMembers(t, 3, nodes...)
	t.Logf("started again, it was a member of three on every node %v later", time.Since(restarted).Round(time.Millisecond))
	for i := range 9 {
		api{t: t, base: nodes[i%3].base, token: tn.key}.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
			obj{"contact": phoneContact(i), "body": fmt.Sprint("after ", i)})
	}
	// Every node lists the inbox at the read model's versions (committed
	// with the journal); the last summaries may still be on their way to
	// the inbox, so the check is awaited.
	want := readModelVersions(t, dbURL, tn.inbox)
	if len(want) != 11 {
		t.Fatalf("the read model holds %d conversations, want 11", len(want))
	}
	var last map[string]int64
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("the read model has %v; the node listed %v", want, last)
		}
	}()
	for i, s := range nodes {
		poll.Until(t, 30*time.Second, fmt.Sprintf("node%d to list the inbox at the read model's versions", i), func() bool {
			last = listVersions(t, api{t: t, base: s.base, token: tn.key}, tn.inbox)
			return maps.Equal(last, want)
		})
	}
}

// readModelVersions is every conversation of the inbox with its version in
// the read model.
func readModelVersions(t *testing.T, dbURL, inbox string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT id, version FROM conversations WHERE inbox_id = $1`, inbox)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// members is how many members a node's /v1/admin/cluster lists: the
// membership is only visible through the admin API.
func members(t *testing.T, s *crashServer) int {
	t.Helper()
	return len(api{t: t, base: s.base, token: testAdminToken}.must(200, "GET", "/v1/admin/cluster", nil)["members"].([]any))
}

// awaitMembers waits for each of the nodes to list want members.
func awaitMembers(t *testing.T, want int, nodes ...*crashServer) {
	t.Helper()
	for i, s := range nodes {
		poll.Until(t, time.Minute, fmt.Sprintf("node %d of %d to see %d members", i, len(nodes), want), func() bool { return members(t, s) == want })
	}
}
