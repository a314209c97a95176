package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/etcdtest"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// lossMsg is one inbound message of TestNodeLoss and the story of its delivery.
type lossMsg struct {
	phone, ext, body string
	start, acked     time.Time
	status           int // the final 201 or 200
	conv, id         string
	seq              int64
	tries            int
	first            int // the node of the first try
	unavailable      int // 503 answers
	transport        int // connection refused, reset or timed out
	refused          string
}

// TestNodeLoss kills (SIGKILL) one of three real nodes (etcd provider, one
// PostgreSQL) in the middle of steady inbound load sent through all three
// nodes' REST, and keeps sending. TestNodeFreeze stops one instead
// (SIGSTOP: a stalled VM, a process stuck in a pause), resumes it 6 s later
// — after etcd dropped it, while its activations are still in its memory —
// and keeps sending.
//
// What counts, as a client that follows docs/api.md would see it:
//   - A request succeeds when a try answers 201, or 200 (a duplicate: an
//     earlier try committed and its answer was lost).
//   - A try that gets no answer (the killed node's listener refuses or
//     resets) or a 503 is retried with the same external_id, on the next
//     live node, as a client behind a load balancer would; the request still
//     succeeds if a retry does before the run ends.
//   - A request fails if no try succeeded by the end of the run, or any try
//     got another status (nothing else is retryable).
//
// It asserts zero failed requests and zero lost messages: every acknowledged
// message is in the timeline exactly once, at the seq its ack named, and
// every conversation's journal is contiguous. The stall is reported, not
// asserted (performance belongs to docs/BENCHMARKS.md): ack latency, from a
// request's first try to its success, of requests to conversations the
// killed node owned. The killed node is the inbox's owner, the worst case:
// every conversation hands its summaries to that inbox actor.
//
// A frozen node's listener accepts and never answers, so clients there give
// a try up after 2 s, as a load balancer would, and retry on the next node;
// the stall of a frozen owner's conversations is that of requests sent to
// the live nodes. After the resume the node's stale activations must be
// fenced, not believed: the counts of lost and duplicated messages and the
// journal's contiguity are checked over the whole run.
func TestNodeLoss(t *testing.T) { testNodeLoss(t, nodeLoss{name: "kill", perTry: 20 * time.Second}) }

func TestNodeFreeze(t *testing.T) {
	testNodeLoss(t, nodeLoss{name: "freeze", freeze: true, perTry: 2 * time.Second, resumeAfter: 6 * time.Second})
}

// nodeLoss is how TestNodeLoss's victim is lost.
type nodeLoss struct {
	name        string
	freeze      bool          // SIGSTOP, and SIGCONT after resumeAfter; else SIGKILL
	perTry      time.Duration // the clients' timeout of one try
	resumeAfter time.Duration
}

// awaitLeft waits for a member the others dropped while it was frozen to
// leave after it resumed: it stops with exit status 1 and says why in its
// log (docs/architecture.md, "A member dropped once is never let back in").
func awaitLeft(t *testing.T, s *crashServer, resumed time.Time) {
	t.Helper()
	select {
	case <-s.exited:
		t.Logf("the frozen member stopped %v after it resumed", s.exitedAt.Sub(resumed).Round(time.Millisecond))
	case <-time.After(time.Minute):
		t.Fatalf("the frozen member still runs a minute after it resumed; its log:\n%s", s.tail())
	}
	var exit *exec.ExitError
	if !errors.As(s.err, &exit) || exit.ExitCode() != 1 || !strings.Contains(s.tail(), "has blocked this member") {
		t.Fatalf("the frozen member ended with %v; want exit status 1 and the reason in its log:\n%s", s.err, s.tail())
	}
}

func testNodeLoss(t *testing.T, loss nodeLoss) {
	const (
		contacts = 240
		workers  = 24
		pace     = 100 * time.Millisecond // per worker, ~240 msg/s in all
		before   = 3 * time.Second
		after    = 8 * time.Second
	)
	etcd := etcdtest.Start(t)
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)

	type lossNode struct {
		srv  *crashServer
		addr string // actor remoting, the member's address
	}
	nodes := make([]lossNode, 3)
	var addrs []string
	for i := range nodes {
		addr := crashFreeAddr(t)
		// The contract's settings only: the members talk mutual TLS from
		// the CA their database keeps.
		env := []string{"SWITCHBOARD_CLUSTER_PROVIDER=etcd", "SWITCHBOARD_ETCD_ENDPOINTS=" + etcd, "SWITCHBOARD_NODE_ADDR=" + addr}
		nodes[i] = lossNode{addr: addr, srv: startSwitchboard(t, bin, dbURL, fmt.Sprintf("node%d", i), env...)}
		addrs = append(addrs, addr)
	}
	servers := make([]*crashServer, len(nodes))
	for i, n := range nodes {
		servers[i] = n.srv
	}
	awaitMembers(t, 3, servers...)
	tn := newTenant(t, api{t: t, base: nodes[0].srv.base}, "Loss")
	victim := slices.Index(addrs, cluster.Owner(tn.inbox, addrs))

	client := &http.Client{Timeout: loss.perTry, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	send := func(base string, m *lossMsg) (int, crashAck, error) {
		var ack crashAck
		body, _ := json.Marshal(map[string]any{"contact": map[string]any{"phone": m.phone}, "body": m.body, "external_id": m.ext})
		req, _ := http.NewRequest("POST", base+"/v1/inboxes/"+tn.inbox+"/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tn.key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, ack, err
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return res.StatusCode, ack, err
		}
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
			if err := json.Unmarshal(raw, &ack); err != nil {
				return 0, ack, fmt.Errorf("decode %s: %w", raw, err)
			}
			if ack.Message.ExternalID != m.ext || ack.Message.Body != m.body || ack.Message.ID == "" || ack.Message.Seq < 1 {
				return 0, ack, fmt.Errorf("ack of %s is about another message: %s", m.ext, raw)
			}
		}
		return res.StatusCode, ack, nil
	}

	var down atomic.Bool          // the victim is killed or frozen: clients leave it out
	giveUp := make(chan struct{}) // the run is over: stop retrying
	// deliver sends m until a try succeeds, starting at node home.
	deliver := func(m *lossMsg, home int) {
		at := home
		for {
			if down.Load() && at == victim {
				at = (at + 1) % len(nodes)
			}
			if m.tries == 0 {
				m.first = at
			}
			status, ack, err := send(nodes[at].srv.base, m)
			m.tries++
			switch {
			case err == nil && (status == http.StatusCreated || status == http.StatusOK):
				m.acked, m.status, m.conv, m.id, m.seq = time.Now(), status, ack.ConversationID, ack.Message.ID, ack.Message.Seq
				return
			case err != nil:
				m.transport++
			case status == http.StatusServiceUnavailable:
				m.unavailable++
			default:
				m.refused = fmt.Sprintf("status %d on try %d", status, m.tries)
				return
			}
			select {
			case <-giveUp:
				return
			case <-time.After(20 * time.Millisecond):
			}
			at = (at + 1) % len(nodes)
		}
	}

	var mu sync.Mutex
	var msgs []*lossMsg
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				i := next.Add(1)
				m := &lossMsg{phone: fmt.Sprintf("+1415555%04d", 1000+i%contacts), ext: fmt.Sprintf("ext-%06d", i),
					body: fmt.Sprintf("message %d", i), start: time.Now()}
				mu.Lock()
				msgs = append(msgs, m)
				mu.Unlock()
				deliver(m, w%len(nodes))
			}
		}()
	}
	time.Sleep(before) // the load runs for a while before the loss: this is the experiment's clock
	killAt := time.Now()
	down.Store(true)
	resumeAt := killAt.Add(after) // never, for a kill
	if loss.freeze {
		if err := nodes[victim].srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(loss.resumeAfter)
		if err := nodes[victim].srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumeAt = time.Now()
		down.Store(false)
		time.Sleep(after - loss.resumeAfter)
	} else {
		if err := nodes[victim].srv.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		time.Sleep(after)
	}
	close(stop)
	// Requests still retrying get a grace period, then the run ends.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(giveUp)
		<-done
	}

	var failed []string
	for _, m := range msgs {
		switch {
		case m.refused != "":
			failed = append(failed, m.ext+": "+m.refused)
		case m.acked.IsZero():
			failed = append(failed, fmt.Sprintf("%s: no success in %d tries (%d 503, %d unanswered)", m.ext, m.tries, m.unavailable, m.transport))
		}
	}
	if len(failed) > 0 {
		for i, n := range nodes {
			if i != victim || loss.freeze {
				t.Logf("node%d log:\n%s", i, n.srv.tail())
			}
		}
		t.Fatalf("%d of %d requests failed, first: %s", len(failed), len(msgs), strings.Join(failed[:min(5, len(failed))], "; "))
	}

	// Nothing lost: the timeline has every acknowledged message exactly once,
	// where its ack said, and nothing else.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT i.conversation_id, i.seq, i.item->>'id', coalesce(i.item->>'external_id', '')
		FROM items i JOIN conversations c ON c.id = i.conversation_id WHERE c.inbox_id = $1`, tn.inbox)
	if err != nil {
		t.Fatal(err)
	}
	type stored struct {
		conv, id string
		seq      int64
	}
	byExt := map[string][]stored{}
	for rows.Next() {
		var s stored
		var ext string
		if err := rows.Scan(&s.conv, &s.seq, &s.id, &ext); err != nil {
			t.Fatal(err)
		}
		byExt[ext] = append(byExt[ext], s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(byExt) != len(msgs) {
		t.Errorf("%d distinct external ids in the timeline, %d acknowledged", len(byExt), len(msgs))
	}
	for _, m := range msgs {
		got := byExt[m.ext]
		if len(got) != 1 || got[0] != (stored{conv: m.conv, id: m.id, seq: m.seq}) {
			t.Fatalf("%s acknowledged as %s@%d in %s; the timeline has %+v", m.ext, m.id, m.seq, m.conv, got)
		}
	}
	// The journal: one event per message, versions 1..n in every conversation.
	var events, gaps int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM journal WHERE inbox_id = $1`, tn.inbox).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT j.conversation_id FROM journal j WHERE j.inbox_id = $1
		GROUP BY j.conversation_id HAVING min(j.version) <> 1 OR max(j.version) <> count(*)) gaps`, tn.inbox).Scan(&gaps); err != nil {
		t.Fatal(err)
	}
	if events != len(msgs) || gaps != 0 {
		t.Errorf("journal: %d events for %d messages, %d conversations with gaps", events, len(msgs), gaps)
	}

	// Every live node serves the inbox at the read model's versions: nothing
	// a lost activation committed is missing from the inbox's memory. (The
	// last deliveries may still be on their way: the check is awaited.)
	model := readModelVersions(t, dbURL, tn.inbox)
	for i, n := range nodes {
		if i == victim {
			if loss.freeze {
				awaitLeft(t, n.srv, resumeAt)
			}
			continue
		}
		var behind []string
		defer func() {
			if t.Failed() && len(behind) > 0 {
				t.Logf("node%d: %d conversations behind, first: %s", i, len(behind), strings.Join(behind[:min(5, len(behind))], "; "))
			}
		}()
		poll.Until(t, 15*time.Second, fmt.Sprintf("node%d to list the inbox at the read model's versions", i), func() bool {
			listed := listVersions(t, api{t: t, base: n.srv.base, token: tn.key}, tn.inbox)
			behind = behind[:0]
			for id, v := range model {
				if listed[id] != v {
					behind = append(behind, fmt.Sprintf("%s listed v%d, read model v%d", id, listed[id], v))
				}
			}
			return len(behind) == 0 && len(listed) == len(model)
		})
	}

	// The stall, reported.
	var owned, others, baseline, resumed, atVictim []time.Duration
	var unavailable, transport, duplicates int
	for _, m := range msgs {
		unavailable += m.unavailable
		transport += m.transport
		if m.status == http.StatusOK {
			duplicates++
		}
		lat := m.acked.Sub(m.start)
		switch {
		case m.acked.Before(killAt):
			baseline = append(baseline, lat)
		case !m.start.Before(resumeAt):
			resumed = append(resumed, lat)
		case m.first == victim && m.start.Before(killAt):
			// In flight on the lost node's own listener: the clients'
			// per-try timeout, or its refused connection, not the cluster's.
			atVictim = append(atVictim, lat)
		case cluster.Owner(m.conv, addrs) == addrs[victim]:
			owned = append(owned, lat)
		default:
			others = append(others, lat)
		}
	}
	t.Logf("%d requests over %s (%s of node%d, the inbox's owner, %s in): %d tries answered 503, %d unanswered, %d successes were 200 duplicates",
		len(msgs), before+after, loss.name, victim, before, unavailable, transport, duplicates)
	t.Logf("ack latency before the %s:                          %s", loss.name, latencies(baseline))
	t.Logf("ack latency after the %s, the lost node's conversations: %s", loss.name, latencies(owned))
	t.Logf("ack latency after the %s, other conversations:         %s", loss.name, latencies(others))
	t.Logf("ack latency of requests in flight on the lost node's own listener: %s", latencies(atVictim))
	if loss.freeze {
		t.Logf("ack latency of requests sent after the resume:          %s", latencies(resumed))
	}
}

// latencies summarises ack latencies as n, p50, p99 and max.
func latencies(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", len(d), at(0.50).Round(100*time.Microsecond),
		at(0.99).Round(100*time.Microsecond), d[len(d)-1].Round(time.Millisecond))
}
