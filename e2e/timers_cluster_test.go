package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/internal/etcdtest"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// TestTimersThreeNodesScannerKilled is issue 12's durability case on a real
// cluster: three switchboard processes joined through etcd, conversations
// falling due while the node running the active timer scanner is killed
// (SIGKILL). Every timer still fires — a standby scanner takes over and the
// conversations that lived on the dead node are activated elsewhere — and
// none fires twice as an event: each conversation has exactly one event by
// the actor automation in its journal, whatever ticks were repeated.
func TestTimersThreeNodesScannerKilled(t *testing.T) {
	const convs = 90
	etcd := etcdtest.Start(t)
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)
	clusterEnv := []string{"SWITCHBOARD_CLUSTER_PROVIDER=etcd", "SWITCHBOARD_ETCD_ENDPOINTS=" + etcd,
		"SWITCHBOARD_CLUSTER_NAME=timers" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	ca := t.TempDir() // the cluster CA: etcd members talk mutual TLS
	var nodes []*crashServer
	for i := range 3 {
		nodes = append(nodes, startSwitchboard(t, bin, dbURL, fmt.Sprint("node", i), append(clusterEnv, clusterTLSEnv(t, ca, fmt.Sprint("node", i))...)...))
	}
	for _, n := range nodes {
		admin := api{t: t, base: n.base, token: testAdminToken}
		poll.Until(t, 30*time.Second, "three members seen by "+n.base, func() bool {
			return len(list(t, admin.must(200, "GET", "/v1/admin/cluster", nil), "members")) == 3
		})
	}
	var scanner *crashServer
	var survivors []*crashServer
	poll.Until(t, 10*time.Second, "one active timer scanner", func() bool {
		scanner, survivors = nil, nil
		for _, n := range nodes {
			if scannerActive(t, n) {
				scanner = n
			} else {
				survivors = append(survivors, n)
			}
		}
		return scanner != nil && len(survivors) == 2
	})

	c := api{t: t, base: survivors[0].base}
	tn := newTenant(t, c, "Acme")
	c.with(tn.key).must(200, "PATCH", "/v1/inboxes/"+tn.inbox, obj{"auto_close_after_s": 2})
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	closed := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status = 'closed'`, tn.inbox).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The conversations arrive over about three seconds through the
	// survivors, so some fall due before the kill and some after; their
	// actors spread over all three nodes.
	ids := map[string]bool{}
	for i := range convs {
		k := api{t: t, base: survivors[i%2].base, token: tn.key}
		m := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": "hi"})
		ids[str(t, m, "conversation_id")] = true
		time.Sleep(30 * time.Millisecond) // pacing the load, not synchronization
	}
	poll.Until(t, 10*time.Second, "the first timers to fire", func() bool { return closed() > 0 })
	if err := scanner.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-scanner.exited
	t.Logf("killed the scanner's node with %d of %d closed", closed(), convs)

	poll.Until(t, 60*time.Second, "every timer to fire", func() bool { return closed() == convs })
	poll.Until(t, 10*time.Second, "a survivor's scanner to be active", func() bool {
		return scannerActive(t, survivors[0]) != scannerActive(t, survivors[1])
	})
	rows, err := pool.Query(context.Background(), `SELECT c.id, count(j.*), bool_and(j.event_type = 'update' AND c.status = 'closed'),
			max(extract(epoch FROM j.created_at - (c.last_activity_at + interval '2 seconds')))
		FROM conversations c LEFT JOIN journal j ON j.conversation_id = c.id AND j.event->>'actor_id' = 'automation'
		WHERE c.inbox_id = $1 GROUP BY c.id`, tn.inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen, worst := 0, 0.0
	for rows.Next() {
		var id string
		var events int
		var closing *bool
		var lag *float64
		if err := rows.Scan(&id, &events, &closing, &lag); err != nil {
			t.Fatal(err)
		}
		if !ids[id] {
			t.Fatalf("unexpected conversation %s", id)
		}
		if events != 1 || closing == nil || !*closing {
			t.Errorf("conversation %s: %d automation events (closing: %v), want exactly one close", id, events, closing)
		}
		if lag != nil {
			worst = max(worst, *lag)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != convs {
		t.Fatalf("%d conversations, want %d", seen, convs)
	}
	t.Logf("latest timer fired %.2f s after its due time", worst)
}

// scannerActive reads the node's switchboard_timer_scanner_active gauge.
func scannerActive(t *testing.T, n *crashServer) bool {
	t.Helper()
	res, err := http.Get(n.base + "/metrics")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "switchboard_timer_scanner_active "); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}
