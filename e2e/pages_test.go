package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts Debian's headless Chromium for a test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (make test installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func TestAdminPageShowsClusterAndStats(t *testing.T) {
	n := testNode(t)
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(n.URL()+"/admin/"),
		chromedp.EmulateViewport(1366, 900),
		chromedp.SendKeys(`[data-testid="login-token"]`, "wrong-token"),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`#login-error:not(:empty)`),
	)
	if err != nil {
		t.Fatal(err)
	}
	loginError := text(t, ctx, "#login-error")
	err = chromedp.Do(ctx,
		chromedp.SetValue("#token", testAdminToken),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`#members tr`),
		// The plots start with the first sample.
		chromedp.WaitVisible(`[data-chart="Ingest (events/s)"] canvas`),
		chromedp.WaitVisible(`[data-chart="Activations"] canvas`),
	)
	if err != nil {
		t.Fatal(err)
	}
	members := text(t, ctx, "#members")
	ingest := text(t, ctx, `#stats dd[data-key="ingest_per_s"]`)
	if !strings.Contains(loginError, "failed") {
		t.Errorf("a wrong token should show an error, got %q", loginError)
	}
	if !strings.Contains(members, n.Member().Address()) || !strings.Contains(members, "this node") {
		t.Errorf("members table %q does not list this node %s", members, n.Member().Address())
	}
	if ingest == "" {
		t.Error("stats do not show ingest_per_s")
	}
	// The answering member is recognised, whatever prefix member ids carry.
	cl := api{t: t, base: n.URL(), token: testAdminToken}.must(200, "GET", "/v1/admin/cluster", nil)
	selves := 0
	for _, m := range list(t, cl, "members") {
		if m.(obj)["self"] == true {
			selves++
			if isNull(t, m.(obj), "activations") {
				t.Errorf("this node's activations are null: %v", m)
			}
		}
	}
	if selves != 1 {
		t.Errorf("%d members marked self in %v", selves, cl)
	}
	screenshot(t, ctx, "admin.png")
}

func TestConsoleShowsInboxLive(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Console")
	c.with(tn.key).must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		map[string]any{"contact": map[string]any{"phone": "+14155550111", "name": "Grace"}, "body": "first message"})
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(n.URL()+"/"),
		chromedp.SendKeys("#token", tn.agentToken),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`#conversations li`),
	)
	if err != nil {
		t.Fatal(err)
	}
	list := text(t, ctx, "#conversations")
	if !strings.Contains(list, "Grace") || !strings.Contains(list, "first message") {
		t.Fatalf("snapshot list = %q", list)
	}
	// A message that arrives while the page is open shows up without a reload.
	c.with(tn.key).must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
		map[string]any{"contact": map[string]any{"phone": "+14155550112", "name": "Linus"}, "body": "live one"})
	err = chromedp.Do(ctx,
		waitTrue(`document.querySelector("#conversations").innerText.includes("live one")`),
		clickNow(`#conversations li:first-child`),
		chromedp.WaitVisible(`#messages li`),
		chromedp.SendKeys("#reply", "hello from the console"),
		chromedp.Click(`#reply-form button[type="submit"]`),
		waitTrue(`document.querySelector("#messages").innerText.includes("hello from the console")`),
	)
	if err != nil {
		t.Fatalf("live update and reply: %v", err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	// One evaluation finds the element and reads it: the pages re-render
	// lists on every frame, so a node found by one call may be gone by the
	// next (chromedp.Text queries, then reads). Visible text only, as
	// chromedp.Text returns it.
	js, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		const e = document.querySelector(`+jsString(sel)+`);
		if (!e) return null;
		const shown = e.offsetWidth || e.offsetHeight || e.getClientRects().length;
		return JSON.stringify(shown ? e.innerText : "");
	})()`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	var s string
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// waitTrue waits until a page expression is true: the page changes on a
// websocket frame, which the test cannot observe more directly.
// clickNow clicks what sel matches at the moment of the click. The pages
// re-render a list item on every update of its conversation, and
// chromedp.Click finds the node first and clicks it in a second step: an
// update in between fails it with "Could not find node with given id".
func clickNow(sel string) chromedp.Action[chromedp.Void] {
	return waitTrue(`((el) => el !== null && (el.click(), true))(document.querySelector(` + jsString(sel) + `))`)
}

func waitTrue(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))
	return func(ctx context.Context, target *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, target)
		return chromedp.Void{}, err
	}
}
