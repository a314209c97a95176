package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// Browser tests of the console's edges: what it does when things go wrong
// (a revoked token, a restart that hides changes, a double click) and when
// an inbox or a thread is larger than one page.

// pageProblems records what a page reports as going wrong: uncaught
// exceptions, console.error calls, and the browser's own error log (a
// resource that failed to load, such as a missing favicon).
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

func watchProblems(t *testing.T, ctx context.Context) *pageProblems {
	t.Helper()
	p := &pageProblems{}
	err := chromedp.Listen(ctx, func(ev any) {
		var s string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			s = "exception: " + e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil {
				s += " " + ex.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				s = "console.error"
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				s = "log: " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if s != "" {
			p.mu.Lock()
			p.list = append(p.list, s)
			p.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pageProblems) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// TestConsoleSignInEdges: a page load logs no error (the pages name their
// icon), an account key is refused with a reason, shortcuts that focus a
// field do not type their key into it, and a revoked agent is signed out
// with a reason instead of reconnecting for ever.
func TestConsoleSignInEdges(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Edges")
	c.with(tn.key).must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": obj{"phone": "+14155550130"}, "body": "hello"})
	res, err := http.Get(n.URL() + "/assets/icon.svg")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "image/svg+xml") {
		t.Fatalf("the pages' icon: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}

	ctx := browser(t)
	problems := watchProblems(t, ctx)
	err = chromedp.Do(ctx,
		chromedp.Navigate(n.URL()+"/"),
		waitTrue(`document.activeElement === document.querySelector('[data-testid="login-token"]')`),
		chromedp.SendKeys(`[data-testid="login-token"]`, tn.key),
		chromedp.Click(`[data-testid="login-submit"]`),
		waitTrue(`document.getElementById("login-error").textContent.includes("account API key")`),
	)
	if err != nil {
		t.Fatalf("an account key in the console: %v (says %q)", err, text(t, ctx, "#login-error"))
	}
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("app").hidden`)); !hidden {
		t.Fatal("the console opened for an account key")
	}

	consoleAt(t, ctx, n.URL(), tn.agentToken)
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(`[data-testid="conversation-item"]`),
		chromedp.KeyEvent("/"),
		waitTrue(`document.activeElement === document.querySelector('[data-testid="search-input"]')`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="search-input"]').value`)); v != "" {
		t.Errorf("the / shortcut typed %q into the search box", v)
	}
	if p := problems.get(); len(p) > 0 {
		t.Errorf("the page reported problems: %q", p)
	}

	// A search on screen when the session ends goes with it: the next
	// agent at this browser may not see those inboxes.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="search-input"]`, "hello\n"),
		waitTrue(`document.querySelectorAll('[data-testid="search-results"] li').length > 0`),
	)
	if err != nil {
		t.Fatal(err)
	}
	c.with(tn.key).must(204, "DELETE", "/v1/agents/"+tn.agentID+"/tokens", nil)
	err = chromedp.Do(ctx, waitTrue(`!document.getElementById("login").hidden &&
		document.getElementById("login-error").textContent.includes("no longer works")`))
	if err != nil {
		t.Fatalf("a revoked agent's console: %v (status %q)", err, text(t, ctx, "#status"))
	}
	left := mustEval[bool](t, ctx, `document.querySelector('[data-testid="search-input"]').value === "" &&
		document.querySelectorAll('[data-testid="search-results"] li').length === 0`)
	if !left {
		t.Error("the signed-out agent's search stays on the page")
	}
}

// TestConsoleReplyOnceAndOlderMessages: a double click sends one reply, and
// a thread longer than a page loads its older messages on request.
func TestConsoleReplyOnceAndOlderMessages(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Thread")
	k := c.with(tn.key)
	var conv string
	for i := range 60 {
		r := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": obj{"phone": "+14155550140"}, "body": fmt.Sprint("chatty ", i)})
		conv = str(t, r, "conversation_id")
	}
	ctx := browser(t)
	consoleAt(t, ctx, n.URL(), tn.agentToken)
	err := chromedp.Do(ctx,
		clickNow(itemSel(conv)),
		waitTrue(`document.querySelectorAll("#messages li").length === 50`),
		chromedp.WaitVisible(`[data-testid="load-older"]`),
		clickNow(`[data-testid="load-older"]`),
		waitTrue(`document.querySelectorAll("#messages li").length === 60`),
		waitTrue(`document.querySelector('[data-testid="load-older"]').hidden`),
	)
	if err != nil {
		t.Fatalf("older messages: %v (%s items)", err, mustEval[string](t, ctx, `String(document.querySelectorAll("#messages li").length)`))
	}
	if first := text(t, ctx, "#messages li:first-child .text"); first != "chatty 0" {
		t.Errorf("the thread begins with %q, want the first message", first)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="reply-input"]`, "only once"),
		waitTrue(`(() => { const b = document.querySelector('[data-testid="reply-send"]'); b.click(); b.click(); return true; })()`),
		waitTrue(`document.querySelector("#messages").innerText.includes("only once") &&
			document.querySelector('[data-testid="reply-input"]').value === "" &&
			!document.querySelector('[data-testid="reply-send"]').disabled`),
	)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, m := range list(t, k.must(200, "GET", "/v1/conversations/"+conv+"/messages?limit=5", nil), "messages") {
		if m.(obj)["body"] == "only once" {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("a double click sent %d replies, want 1", sent)
	}
}

// TestConsoleThreadCatchesUpAfterReconnect: what changed in the open
// conversation while the page could not connect shows in its header once it
// does (the page resyncs the list; the header must follow).
func TestConsoleThreadCatchesUpAfterReconnect(t *testing.T) {
	url := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	at := func(cfg *server.Config) { cfg.HTTPAddr = addr }
	n1, stop1 := nodeOn(t, url, at)
	c := api{t: t, base: n1.URL()}
	tn := newTenant(t, c, "Stale")
	conv := str(t, c.with(tn.key).must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		obj{"contact": obj{"phone": "+14155550150", "name": "Stale"}, "body": "hi"}), "conversation_id")
	// The page reaches the node through a proxy that can refuse websocket
	// upgrades: the page may not reconnect until the change is made.
	var shut atomic.Bool
	upstream := httputil.NewSingleHostReverseProxy(&neturl.URL{Scheme: "http", Host: addr})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/ws" && shut.Load() {
			http.Error(w, "the test keeps the page offline", http.StatusServiceUnavailable)
			return
		}
		upstream.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	ctx := browser(t)
	consoleAt(t, ctx, proxy.URL, tn.agentToken)
	if err := chromedp.Do(ctx, clickNow(itemSel(conv)), waitTrue(`document.getElementById("thread-status").textContent === "new"`)); err != nil {
		t.Fatal(err)
	}
	shut.Store(true)
	stop1()
	if err := chromedp.Do(ctx, waitTrue(`document.getElementById("status").dataset.state === "reconnecting"`)); err != nil {
		t.Fatal(err)
	}
	n2, _ := nodeOn(t, url, at)
	api{t: t, base: n2.URL(), token: tn.key}.must(200, "PATCH", "/v1/conversations/"+conv, obj{"status": "closed", "tags_add": []string{"whiledown"}})
	if s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").dataset.state`)); s != "reconnecting" {
		t.Fatalf("the page is %q while its websocket is refused", s)
	}
	shut.Store(false)
	err := chromedp.Do(ctx, waitTrue(`document.getElementById("thread-status").textContent === "closed" &&
		document.getElementById("thread-meta").textContent.includes("#whiledown") &&
		!document.getElementById("reopen-btn").hidden`))
	if err != nil {
		t.Fatalf("the open thread after the reconnect: %v (status %q, meta %q)", err, text(t, ctx, "#thread-status"), text(t, ctx, "#thread-meta"))
	}
}

// TestConsoleSortsTheWholeInbox: with more conversations than the list
// holds, each sort shows the inbox's first page under that sort, not a
// re-sort of the newest page.
func TestConsoleSortsTheWholeInbox(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Many")
	k := c.with(tn.key)
	var oldest string
	for i := range 210 {
		r := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": fmt.Sprint("m", i)})
		if i == 0 {
			oldest = str(t, r, "conversation_id")
		}
	}
	ctx := browser(t)
	consoleAt(t, ctx, n.URL(), tn.agentToken)
	err := chromedp.Do(ctx,
		waitTrue(`document.querySelectorAll('[data-testid="conversation-item"]').length === 200`),
		chromedp.SetValue("#sort", "oldest"),
		waitTrue(`document.getElementById("sort").dispatchEvent(new Event("change")), true`),
		waitTrue(`document.querySelector('[data-testid="conversation-item"]').dataset.conversationId === `+jsString(oldest)),
	)
	if err != nil {
		t.Fatalf("sort=oldest: %v (first %s)", err, mustEval[string](t, ctx, `document.querySelector('[data-testid="conversation-item"]').dataset.conversationId`))
	}
}

func mustEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestConsoleHeaderFollowsAConversationOutsideTheList: the open
// conversation's header follows its changes after it left the list's
// filter (closed, under the default tab), which no inbox update carries.
func TestConsoleHeaderFollowsAConversationOutsideTheList(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Header")
	k := c.with(tn.key)
	conv := str(t, k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		obj{"contact": obj{"phone": "+14155550160", "name": "Header"}, "body": "hi"}), "conversation_id")
	ctx := browser(t)
	consoleAt(t, ctx, n.URL(), tn.agentToken)
	if err := chromedp.Do(ctx, clickNow(itemSel(conv)), waitTrue(`document.getElementById("thread-status").textContent === "new"`)); err != nil {
		t.Fatal(err)
	}
	k.must(200, "PATCH", "/v1/conversations/"+conv, obj{"status": "closed"})
	if err := chromedp.Do(ctx, waitTrue(`document.getElementById("thread-status").textContent === "closed"`)); err != nil {
		t.Fatalf("closed: %v", err)
	}
	// Closed, it is in no list of the default tab now: only the watch's
	// summaries carry what follows.
	k.must(200, "PATCH", "/v1/conversations/"+conv, obj{"tags_add": []string{"later"}, "assignee_id": tn.agentID})
	if err := chromedp.Do(ctx, waitTrue(`document.getElementById("thread-meta").textContent.includes("#later")`)); err != nil {
		t.Fatalf("the header after a change outside the list: %v (meta %q)", err, text(t, ctx, "#thread-meta"))
	}
}

// TestConsoleAgentWithoutAnInbox: an agent of no inbox is told so, and the
// tabs' keys leave that message (and no error) on the page.
func TestConsoleAgentWithoutAnInbox(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Lonely")
	carol := c.with(tn.key).must(201, "POST", "/v1/agents", obj{"name": "Carol", "email": "carol@example.com", "inbox_ids": []string{}})
	ctx := browser(t)
	problems := watchProblems(t, ctx)
	consoleAt(t, ctx, n.URL(), str(t, carol, "token"))
	const told = `document.getElementById("list-more").textContent.includes("not a member of any inbox")`
	if err := chromedp.Do(ctx, waitTrue(told), chromedp.KeyEvent("1"), chromedp.KeyEvent("2")); err != nil {
		t.Fatal(err)
	}
	// The key handlers ran as the key events were dispatched: a tab
	// switch redraws the list's footer at once.
	if !mustEval[bool](t, ctx, told) {
		t.Fatalf("after the tab keys the page says %q", text(t, ctx, "#list-more"))
	}
	if p := problems.get(); len(p) > 0 {
		t.Errorf("the page reported problems: %q", p)
	}
}
