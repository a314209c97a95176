package client_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/client"
	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// These tests run the client against a real node (in-process, on a real
// PostgreSQL), as an integration would use it.

func TestMain(m *testing.M) { pgtest.Main(m) }

const adminToken = "adm_client_test"

func startNode(t testing.TB, mutate ...func(*server.Config)) *server.Node {
	t.Helper()
	n, _ := startNodeOn(t, pgtest.NewDatabase(t), mutate...)
	return n
}

// startNodeOn starts a node on the database at dbURL; stop stops it (and
// cleanup does, unless stop did).
func startNodeOn(t testing.TB, dbURL string, mutate ...func(*server.Config)) (n *server.Node, stop func()) {
	t.Helper()
	env := map[string]string{
		"SWITCHBOARD_DATABASE_URL": dbURL,
		"SWITCHBOARD_ADMIN_TOKEN":  adminToken,
		"SWITCHBOARD_HTTP_ADDR":    "127.0.0.1:0",
		"SWITCHBOARD_SECRET_KEY":   webhooks.NewKey(),
	}
	cfg, err := server.LoadConfig("test", nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutate {
		m(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err = server.Start(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := n.Stop(context.Background()); err != nil {
				t.Errorf("stop node: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return n, stop
}

func newClient(t testing.TB, base, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(base, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tenant is an account with one inbox and one agent of it.
type tenant struct {
	key, agent *client.Client
	inbox      *client.Inbox
	agentID    string
	agentToken string
	keyToken   string
}

func newTenant(t testing.TB, base string) tenant {
	t.Helper()
	ctx := context.Background()
	acc, err := newClient(t, base, adminToken).CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	key := newClient(t, base, acc.APIKey)
	ib, err := key.CreateInbox(ctx, client.CreateInboxRequest{Name: "Support", PhoneNumber: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := key.CreateAgent(ctx, client.CreateAgentRequest{Name: "Ada", Email: "ada@example.com", InboxIDs: []string{ib.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return tenant{key: key, agent: key.WithToken(ag.Token), inbox: ib, agentID: ag.Agent.ID, agentToken: ag.Token, keyToken: acc.APIKey}
}

// proxy forwards TCP connections to a node, and can cut them all as a
// network failure would: neither end gets a close frame.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(out, in) })
		p.wg.Go(func() { pipe(in, out) })
	}
}

// retarget sends new connections to another node.
func (p *proxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// cut closes every connection made so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
