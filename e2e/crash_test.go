package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/internal/certs"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// crashServer is the real switchboard binary running as a child process.
type crashServer struct {
	cmd      *exec.Cmd
	base     string
	log      string
	exited   chan struct{}
	err      error
	exitedAt time.Time // when it ended, once exited is closed
}

// buildSwitchboard compiles the switchboard binary for the test.
func buildSwitchboard(t *testing.T) string {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH, so this finds the
	// toolchain that is running the test.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go toolchain: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/switchboard-dev/switchboard/cmd/switchboard").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func crashFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startSwitchboard starts the binary on the database and waits for /readyz;
// env adds SWITCHBOARD_* settings (KEY=value).
func startSwitchboard(t *testing.T, bin, dbURL, name string, env ...string) *crashServer {
	t.Helper()
	return startCommand(t, bin, "serve", dbURL, name, env...)
}

// startCommand is startSwitchboard with the binary's command (serve, dev).
func startCommand(t *testing.T, bin, command, dbURL, name string, env ...string) *crashServer {
	t.Helper()
	addr := crashFreeAddr(t)
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, command)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"SWITCHBOARD_DATABASE_URL=" + dbURL,
		"SWITCHBOARD_HTTP_ADDR=" + addr,
		"SWITCHBOARD_ADMIN_TOKEN=" + testAdminToken,
		"SWITCHBOARD_LOG_LEVEL=warn",
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &crashServer{cmd: cmd, base: "http://" + addr, log: logPath, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		s.exitedAt = time.Now()
		logFile.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	defer func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, s.tail())
		}
	}()
	// Readiness is announced only by /readyz; an exit ends the wait early.
	poll.Until(t, 60*time.Second, name+" to be ready", func() bool {
		select {
		case <-s.exited:
			t.Fatalf("%s exited before it was ready: %v", name, s.err)
		default:
		}
		res, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return s
}

func (s *crashServer) tail() string {
	raw, _ := os.ReadFile(s.log)
	if len(raw) > 12000 {
		raw = raw[len(raw)-12000:]
	}
	return string(raw)
}

// crashMsg is one inbound message of the test and what its acknowledgement said.
type crashMsg struct {
	phone, ext, body string
	acked            bool // a 201/200 was received
	status           int
	id, conv         string
	seq              int64
}

type crashAck struct {
	ConversationID string `json:"conversation_id"`
	Message        struct {
		ID         string `json:"id"`
		Seq        int64  `json:"seq"`
		Body       string `json:"body"`
		ExternalID string `json:"external_id"`
	} `json:"message"`
	Conversation struct {
		Version int64 `json:"version"`
	} `json:"conversation"`
}

// TestCrashSafety is durable-before-visible (docs/architecture.md, invariant
// 2) end to end: the real binary takes 2,000 inbound messages over 50
// conversations from 16 concurrent clients and is SIGKILLed mid-stream;
// restarted on the same database, it has every acknowledged message exactly
// once, every conversation's versions contiguous from 1, and an inbox list
// that agrees with the journal.
// Retrying the unacknowledged messages (same external_id) either creates
// them (201) or answers with the original (200) — never a second copy.
func TestCrashSafety(t *testing.T) {
	const (
		total    = 2000
		contacts = 50
		clients  = 16
		killAt   = total / 2
	)
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)
	srv := startSwitchboard(t, bin, dbURL, "first")
	tn := newTenant(t, api{t: t, base: srv.base}, "Crash")

	msgs := make([]*crashMsg, total)
	for i := range msgs {
		msgs[i] = &crashMsg{phone: fmt.Sprintf("+1415555%04d", 1000+i%contacts), ext: fmt.Sprintf("ext-%05d", i), body: fmt.Sprintf("message %d", i)}
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	// send posts one message; ok reports a 200/201 with its parsed body.
	send := func(base string, m *crashMsg) (status int, ack crashAck, err error) {
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
				return res.StatusCode, ack, fmt.Errorf("decode %s: %w", raw, err)
			}
			if ack.Message.ExternalID != m.ext || ack.Message.Body != m.body || ack.Message.ID == "" || ack.Message.Seq < 1 {
				return res.StatusCode, ack, fmt.Errorf("ack of %s is about another message: %s", m.ext, raw)
			}
		}
		return res.StatusCode, ack, nil
	}
	// run sends every message of todo from the clients; handle records each outcome.
	run := func(todo []*crashMsg, handle func(m *crashMsg, status int, ack crashAck, err error)) {
		jobs := make(chan *crashMsg)
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range jobs {
					status, ack, err := send(srv.base, m)
					handle(m, status, ack, err)
				}
			}()
		}
		for _, m := range todo {
			jobs <- m
		}
		close(jobs)
		wg.Wait()
	}

	// Phase 1: stream, and SIGKILL the process once half are acknowledged.
	var acked atomic.Int64
	var killed atomic.Bool
	var killOnce sync.Once
	var mu sync.Mutex
	var failures []string
	run(msgs, func(m *crashMsg, status int, ack crashAck, err error) {
		if killed.Load() && (err != nil || status == 0) {
			return // the server is gone: unacknowledged
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && status == http.StatusCreated:
			m.acked, m.status, m.id, m.conv, m.seq = true, status, ack.Message.ID, ack.ConversationID, ack.Message.Seq
			if acked.Add(1) >= killAt {
				killOnce.Do(func() {
					killed.Store(true)
					if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
						failures = append(failures, "kill: "+err.Error())
					}
				})
			}
		case killed.Load():
			// An answer racing the kill (e.g. 503 while stopping): unacknowledged.
		default:
			failures = append(failures, fmt.Sprintf("%s before the kill: status %d err %v", m.ext, status, err))
		}
	})
	<-srv.exited
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s\n%s", len(failures), failures[0], srv.tail())
	}
	ackedBefore := acked.Load()
	if ackedBefore < killAt || ackedBefore >= total {
		t.Fatalf("%d acknowledged before the kill; want it mid-stream", ackedBefore)
	}

	// Phase 2: restart on the same database; retry what was not acknowledged,
	// and repeat everything that was: duplicates answer 200 with the original.
	srv = startSwitchboard(t, bin, dbURL, "restarted")
	var unacked []*crashMsg
	for _, m := range msgs {
		if !m.acked {
			unacked = append(unacked, m)
		}
	}
	var committedUnacked atomic.Int64
	run(unacked, func(m *crashMsg, status int, ack crashAck, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && (status == http.StatusCreated || status == http.StatusOK):
			if status == http.StatusOK {
				committedUnacked.Add(1) // committed before the kill, its ack lost
			}
			m.acked, m.status, m.id, m.conv, m.seq = true, status, ack.Message.ID, ack.ConversationID, ack.Message.Seq
		default:
			failures = append(failures, fmt.Sprintf("retry of %s: status %d err %v", m.ext, status, err))
		}
	})
	var originals []*crashMsg
	for _, m := range msgs {
		if m.status == http.StatusCreated {
			originals = append(originals, m)
		}
	}
	run(originals, func(m *crashMsg, status int, ack crashAck, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || status != http.StatusOK || ack.Message.ID != m.id || ack.Message.Seq != m.seq || ack.ConversationID != m.conv {
			failures = append(failures, fmt.Sprintf("repeat of %s: status %d err %v, got %s@%d in %s, want %s@%d in %s",
				m.ext, status, err, ack.Message.ID, ack.Message.Seq, ack.ConversationID, m.id, m.seq, m.conv))
		}
	})
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s\n%s", len(failures), failures[0], srv.tail())
	}
	t.Logf("acknowledged before the kill: %d; retried after restart: %d, of which %d had committed without an ack",
		ackedBefore, len(unacked), committedUnacked.Load())

	// Every message present exactly once, as acknowledged (REST timeline).
	k := api{t: t, base: srv.base, token: tn.key}
	byConv := map[string][]*crashMsg{}
	for _, m := range msgs {
		byConv[m.conv] = append(byConv[m.conv], m)
	}
	if len(byConv) != contacts {
		t.Fatalf("%d conversations, want %d", len(byConv), contacts)
	}
	for conv, want := range byConv {
		seen := map[string]int{}
		seqs := map[int64]bool{}
		byID := map[string]int64{}
		path := "/v1/conversations/" + conv + "/messages?limit=200"
		for path != "" {
			page := k.must(200, "GET", path, nil)
			for _, raw := range page["messages"].([]any) {
				it := raw.(map[string]any)
				ext, _ := it["external_id"].(string)
				seq := int64(it["seq"].(float64))
				seen[ext]++
				if seqs[seq] {
					t.Fatalf("%s: seq %d twice in the timeline", conv, seq)
				}
				seqs[seq] = true
				byID[it["id"].(string)] = seq
			}
			path = ""
			if nb, ok := page["next_before"].(float64); ok {
				path = fmt.Sprintf("/v1/conversations/%s/messages?limit=200&before=%d", conv, int64(nb))
			}
		}
		if len(seen) != len(want) || len(byID) != len(want) {
			t.Fatalf("%s: %d distinct external ids, %d items; want %d", conv, len(seen), len(byID), len(want))
		}
		for _, m := range want {
			if seen[m.ext] != 1 {
				t.Fatalf("%s: %s appears %d times", conv, m.ext, seen[m.ext])
			}
			if seq, ok := byID[m.id]; !ok || seq != m.seq {
				t.Fatalf("%s: acknowledged %s (%s@%d) is at %d (present %v)", conv, m.ext, m.id, m.seq, seq, ok)
			}
		}
	}

	// The journal: versions 1..n for every conversation, one row each, and
	// the head, the read model and the idempotency keys agree with it.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT j.conversation_id, count(*), count(DISTINCT j.version), min(j.version), max(j.version),
			h.version, c.version, (SELECT count(*) FROM items i WHERE i.conversation_id = j.conversation_id)
		FROM journal j JOIN conversation_heads h ON h.conversation_id = j.conversation_id
			JOIN conversations c ON c.id = j.conversation_id
		WHERE j.inbox_id = $1 GROUP BY j.conversation_id, h.version, c.version`, tn.inbox)
	if err != nil {
		t.Fatal(err)
	}
	journalHead := map[string]int64{}
	for rows.Next() {
		var id string
		var n, distinct, lo, hi, head, model, items int64
		if err := rows.Scan(&id, &n, &distinct, &lo, &hi, &head, &model, &items); err != nil {
			t.Fatal(err)
		}
		want := int64(len(byConv[id]))
		if n != want || distinct != n || lo != 1 || hi != n || head != hi || model != hi || items != want {
			t.Errorf("%s: journal %d rows (%d distinct) versions %d..%d, head %d, read model %d, items %d; want 1..%d everywhere",
				id, n, distinct, lo, hi, head, model, items, want)
		}
		journalHead[id] = hi
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(journalHead) != contacts {
		t.Fatalf("journal has %d conversations, want %d", len(journalHead), contacts)
	}
	var keys int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE scope = $1`, "ext:"+tn.inbox).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != total {
		t.Fatalf("%d external_id keys, want %d", keys, total)
	}

	// The inbox list (the inbox actor's memory) agrees with the journal.
	listed := listVersions(t, k, tn.inbox)
	if len(listed) != contacts {
		t.Fatalf("list has %d conversations, want %d", len(listed), contacts)
	}
	for id, v := range listed {
		if v != journalHead[id] {
			t.Errorf("%s: listed at version %d, journal head %d", id, v, journalHead[id])
		}
	}

	// And a graceful stop of the restarted process exits cleanly.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("graceful stop: %v\n%s", srv.err, srv.tail())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", srv.tail())
	}
}

// clusterTLSEnv issues node a certificate from the cluster CA kept in caDir
// (made on first use) and returns the settings that make the node talk
// mutual TLS with the other members, as a multi-node provider requires.
func clusterTLSEnv(t *testing.T, caDir, node string) []string {
	t.Helper()
	cert, key := filepath.Join(caDir, node+".pem"), filepath.Join(caDir, node+"-key.pem")
	if err := certs.IssueFiles(caDir, node, []string{"127.0.0.1", "localhost"}, cert, key); err != nil {
		t.Fatal(err)
	}
	return []string{"SWITCHBOARD_CLUSTER_CA=" + certs.In(caDir).CA, "SWITCHBOARD_NODE_CERT=" + cert, "SWITCHBOARD_NODE_KEY=" + key}
}
