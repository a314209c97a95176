package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// Browser tests of the agent console (gateway/web/console.*): real nodes,
// real Chromium, two agents in separate browser contexts.

// consoleAt signs an agent into the console in ctx and waits until its
// websocket is live.
func consoleAt(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1366, 860),
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys(`[data-testid="login-token"]`, token),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="conversation-list"]`),
		waitTrue(`["live","resumed","resynced"].includes(document.getElementById("status").dataset.state)`),
	)
	if err != nil {
		t.Fatalf("sign in to the console: %v", err)
	}
}

// otherContext opens a second browser context (its own storage) in the
// browser of ctx.
func otherContext(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	ctx2, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return ctx2
}

func itemSel(conv string) string {
	return fmt.Sprintf(`[data-testid="conversation-item"][data-conversation-id=%q]`, conv)
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

func count(t *testing.T, ctx context.Context, key string) string {
	t.Helper()
	return text(t, ctx, fmt.Sprintf(`[data-count=%q]`, key))
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SWITCHBOARD_SCREENSHOTS") == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleTwoAgents(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Console")
	k := c.with(tn.key)
	b := k.must(201, "POST", "/v1/agents", obj{"name": "Bea", "email": "bea@example.com", "inbox_ids": []string{tn.inbox}})
	bID, bToken := str(t, sub(t, b, "agent"), "id"), str(t, b, "token")
	olderConv := str(t, k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": obj{"phone": "+14155550120", "name": "Ada"}, "body": "an older one"}), "conversation_id")

	ctxA := browser(t)
	consoleAt(t, ctxA, n.URL(), tn.agentToken)
	ctxB := otherContext(t, ctxA) // once the browser runs
	consoleAt(t, ctxB, n.URL(), bToken)

	// A message posted over REST shows in both lists.
	posted := time.Now()
	m := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		obj{"contact": obj{"phone": "+14155550121", "name": "Grace"}, "body": "my order never came"})
	conv := str(t, m, "conversation_id")
	for _, ctx := range []context.Context{ctxA, ctxB} {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(itemSel(conv))); err != nil {
			t.Fatalf("the new conversation in the list: %v", err)
		}
	}
	t.Logf("REST message in both consoles' lists after %s", time.Since(posted).Round(time.Millisecond))
	unassignedBefore, mineBefore := count(t, ctxB, "unassigned"), count(t, ctxB, "mine")
	if unassignedBefore != "2" {
		t.Errorf("B's unassigned count is %s with two new conversations", unassignedBefore)
	}
	if got := text(t, ctxA, `[data-testid="conversation-list"] li:first-child`); !strings.Contains(got, "my order never came") {
		t.Errorf("the newest conversation is not first under sort=recent: %q", got)
	}

	// A assigns it to B and tags it; B's list and counts change live.
	err := chromedp.Do(ctxA,
		clickNow(itemSel(conv)),
		chromedp.WaitVisible(`[data-testid="thread"] #messages li`),
		chromedp.SendKeys("#assignee", bID),
		chromedp.Click(`#assign-form button[type="submit"]`),
		chromedp.SendKeys("#tag", "vip"),
		chromedp.Click(`#tag-form button[type="submit"]`),
		waitTrue(`document.querySelector("#thread-meta").innerText.includes("#vip")`),
	)
	if err != nil {
		t.Fatalf("assign and tag: %v", err)
	}
	err = chromedp.Do(ctxB,
		waitTrue(`document.querySelector(`+jsString(itemSel(conv))+`).innerText.includes("#vip")`),
		waitTrue(`document.querySelector('[data-count="mine"]').textContent !== `+jsString(mineBefore)),
	)
	if err != nil {
		t.Fatalf("B's list after the assignment: %v", err)
	}
	if got := count(t, ctxB, "mine"); got != "1" || mineBefore != "0" {
		t.Errorf("B's mine count went %s → %s, want 0 → 1", mineBefore, got)
	}
	if got := count(t, ctxB, "unassigned"); got == unassignedBefore {
		t.Errorf("B's unassigned count stayed %s", got)
	}
	// The unassigned view no longer lists it.
	err = chromedp.Do(ctxB,
		chromedp.Click(`[data-tab="unassigned"]`),
		waitTrue(`document.querySelector(`+jsString(itemSel(conv))+`) === null`),
		chromedp.Click(`[data-tab="all"]`),
		chromedp.WaitVisible(itemSel(conv)),
	)
	if err != nil {
		t.Fatalf("B's unassigned tab: %v", err)
	}

	// Both have it open; A types and B sees it; B replies and A sees the reply.
	err = chromedp.Do(ctxB,
		clickNow(itemSel(conv)),
		chromedp.WaitVisible(`#messages li`),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Each sees the other in presence, by name (GET /v1/inboxes/{id}/agents),
	// and not itself.
	for _, p := range []struct {
		ctx                  context.Context
		me, other, otherName string
	}{{ctxA, tn.agentID, bID, "Bea"}, {ctxB, bID, tn.agentID, "Agent"}} {
		err := chromedp.Do(p.ctx, waitTrue(`(() => { const e = document.getElementById("thread-presence");
			const agents = e.dataset.agents.split(",");
			return agents.includes(`+jsString(p.me)+`) && agents.includes(`+jsString(p.other)+`) &&
				e.textContent === "Also viewing: " + `+jsString(p.otherName)+`; })()`))
		if err != nil {
			t.Fatalf("presence in %s's console: %v (shows %q)", p.me, err, text(t, p.ctx, "#thread-presence"))
		}
	}
	if err := chromedp.Do(ctxA, chromedp.SendKeys(`[data-testid="reply-input"]`, "let me check")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctxB, waitTrue(`document.getElementById("typing").textContent.includes("typing")`)); err != nil {
		t.Fatalf("B does not see A typing: %v", err)
	}
	err = chromedp.Do(ctxB,
		chromedp.SendKeys(`[data-testid="reply-input"]`, "on it, sorry for the wait"),
		chromedp.Click(`[data-testid="reply-send"]`),
		waitTrue(`document.getElementById("messages").innerText.includes("on it, sorry for the wait")`),
	)
	if err != nil {
		t.Fatalf("B replies: %v", err)
	}
	if err := chromedp.Do(ctxA, waitTrue(`[...document.querySelectorAll("#messages li.outbound")].some((li) => li.innerText.includes("on it, sorry for the wait"))`)); err != nil {
		t.Fatalf("A does not see B's reply: %v", err)
	}
	// The integration reports the reply delivered; A's tick moves with it.
	replyID, err := chromedp.Run(ctxA, chromedp.Evaluate[string](
		`[...document.querySelectorAll("#messages li.outbound")].find((li) => li.innerText.includes("on it, sorry for the wait")).dataset.id`))
	if err != nil || replyID == "" {
		t.Fatalf("the reply's id in A's thread: %q %v", replyID, err)
	}
	tick := `document.querySelector('#messages li[data-id=` + jsString(replyID) + `] .tick')`
	if before := text(t, ctxA, `#messages li[data-id=`+jsString(replyID)+`] .tick`); strings.Contains(before, "delivered") {
		t.Fatalf("the tick says %q before any status report", before)
	}
	k.must(200, "POST", "/v1/conversations/"+conv+"/messages/"+replyID+"/status", obj{"status": "delivered"})
	if err := chromedp.Do(ctxA, waitTrue(tick+`?.dataset.status === "delivered"`)); err != nil {
		t.Fatalf("A's delivery tick after the status report: %v", err)
	}
	if label, _ := chromedp.Run(ctxA, chromedp.Evaluate[string](tick+`.getAttribute("aria-label")`)); label != "Delivery: delivered" {
		t.Errorf("the tick's accessible name is %q", label)
	}
	got := k.must(200, "GET", "/v1/conversations/"+conv, nil)
	if field(t, got, "addressed") != true || str(t, got, "assignee_id") != bID {
		t.Errorf("after the console's moves the conversation is %v", got)
	}
	screenshot(t, ctxA, "console.png")

	// "Assign to me": the console knows its agent from GET /v1/agents.
	if me := text(t, ctxA, "#me"); me != "Agent" {
		t.Errorf("A's console names its agent %q", me)
	}
	err = chromedp.Do(ctxA,
		clickNow(itemSel(olderConv)),
		waitTrue(`document.getElementById("thread-title").textContent === "Ada"`),
		chromedp.Click("#assign-me"),
		waitTrue(`document.querySelector("#thread-meta [data-assignee]")?.dataset.assignee === `+jsString(tn.agentID)),
		waitTrue(`document.querySelector('[data-count="mine"]').textContent === "1"`),
		waitTrue(`document.querySelector(`+jsString(itemSel(olderConv))+`)?.innerText.includes("→ me")`),
	)
	if err != nil {
		dump, _ := chromedp.Run(ctxA, chromedp.Evaluate[string](`JSON.stringify({me: document.getElementById("me").textContent, disabled: document.getElementById("assign-me").disabled,
			meta: document.getElementById("thread-meta").innerHTML, mine: document.querySelector('[data-count="mine"]').textContent, err: document.getElementById("reply-error").textContent,
			item: document.querySelector(`+jsString(itemSel(olderConv))+`)?.innerText})`))
		t.Fatalf("assign to me: %v\n%s", err, dump)
	}
	if meta := text(t, ctxA, "#thread-meta [data-assignee]"); meta != "Assigned to me" {
		t.Errorf("the thread says %q", meta)
	}
	if got := k.must(200, "GET", "/v1/conversations/"+olderConv, nil); str(t, got, "assignee_id") != tn.agentID {
		t.Errorf("after assign to me the conversation is %v", got)
	}
	// A left B's conversation: B's presence no longer lists A.
	err = chromedp.Do(ctxB, waitTrue(`document.getElementById("thread-presence").dataset.agents === `+jsString(bID)+
		` && document.getElementById("thread-presence").textContent === ""`))
	if err != nil {
		t.Fatalf("B's presence after A left: %v (shows %q)", err, text(t, ctxB, "#thread-presence"))
	}
}

func TestConsoleSurvivesNodeRestart(t *testing.T) {
	url := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	at := func(cfg *server.Config) { cfg.HTTPAddr = addr }
	n1, stop1 := nodeOn(t, url, at)
	c := api{t: t, base: n1.URL()}
	tn := newTenant(t, c, "Restart")
	k := c.with(tn.key)
	for i := range 3 {
		k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": fmt.Sprint("before ", i)})
	}
	ctx := browser(t)
	consoleAt(t, ctx, n1.URL(), tn.agentToken)
	// Record every connection state the page shows.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__states = []; new MutationObserver(() => __states.push(document.getElementById("status").dataset.state))
			.observe(document.getElementById("status"), {attributes: true, attributeFilter: ["data-state"]}); true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		waitTrue(`document.querySelectorAll('[data-testid="conversation-item"]').length === 3`),
	); err != nil {
		t.Fatal(err)
	}

	stop1()
	if err := chromedp.Do(ctx, waitTrue(`__states.includes("reconnecting")`)); err != nil {
		t.Fatalf("the console does not show reconnecting: %v", err)
	}
	if s := text(t, ctx, "#status"); !strings.Contains(s, "reconnecting") {
		t.Errorf("status pill says %q while the node is down", s)
	}
	n2, _ := nodeOn(t, url, at)
	k = api{t: t, base: n2.URL(), token: tn.key}
	for i := 3; i < 5; i++ {
		k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": fmt.Sprint("after ", i)})
	}
	if err := chromedp.Do(ctx,
		waitTrue(`__states.includes("resumed") || __states.includes("resynced")`),
		waitTrue(`document.querySelectorAll('[data-testid="conversation-item"]').length === 5`),
	); err != nil {
		t.Fatalf("the console after the restart: %v", err)
	}

	// It ends with the list a fresh page load shows.
	fresh := otherContext(t, ctx)
	consoleAt(t, fresh, n2.URL(), tn.agentToken)
	const ids = `[...document.querySelectorAll('[data-testid="conversation-item"]')].map((li) => li.dataset.conversationId + "@" + li.dataset.version).join(",")`
	if err := chromedp.Do(fresh, waitTrue(`document.querySelectorAll('[data-testid="conversation-item"]').length === 5`)); err != nil {
		t.Fatal(err)
	}
	want, err := chromedp.Run(fresh, chromedp.Evaluate[string](ids))
	if err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](ids))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("after the restart the console lists\n%s\na fresh load lists\n%s", got, want)
	}
}

func TestConsoleSearchOpensTheConversation(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Search")
	k := c.with(tn.key)
	for i := range 3 {
		k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": fmt.Sprint("hello ", i)})
	}
	m := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		obj{"contact": obj{"phone": "+14155550199", "name": "Linus"}, "body": "the parcel with the blue umbrella is missing"})
	conv := str(t, m, "conversation_id")
	k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": obj{"phone": "+14155550199"}, "body": "any news?"})

	ctx := browser(t)
	consoleAt(t, ctx, n.URL(), tn.agentToken)
	if err := chromedp.Do(ctx, chromedp.SendKeys(`[data-testid="search-input"]`, "umbrella")); err != nil {
		t.Fatal(err)
	}
	// The indexer follows the commit log; search until it caught up.
	poll.Until(t, 15*time.Second, "the message in the console's search results", func() bool {
		err := chromedp.Do(ctx,
			chromedp.Click(`#search-form button[type="submit"]`),
			waitTrue(`!document.getElementById("search-summary").textContent.startsWith("Searching")`),
		)
		if err != nil {
			t.Fatal(err)
		}
		found, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="search-results"] li[data-conversation-id=`+jsString(conv)+`]') !== null`))
		return found
	})
	err := chromedp.Do(ctx,
		chromedp.Click(`[data-testid="search-results"] li[data-conversation-id=`+jsString(conv)+`] button`),
		waitTrue(`document.querySelector("#messages li.hit") !== null`),
	)
	if err != nil {
		t.Fatalf("open the search hit: %v", err)
	}
	if got := text(t, ctx, "#messages li.hit"); !strings.Contains(got, "blue umbrella") {
		t.Errorf("the highlighted message is %q", got)
	}
	if got := text(t, ctx, "#thread-title"); got != "Linus" {
		t.Errorf("the open conversation is %q, want Linus's", got)
	}
}

// freeAddr is a loopback address nothing listens on now, for a node that
// must come back on the same address after a restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
