package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// TestAdminClusterActivationsOfEveryMember: three nodes hold known numbers
// of conversation and inbox activations, and /v1/admin/cluster on every
// node shows every member's, the remote ones included.
func TestAdminClusterActivationsOfEveryMember(t *testing.T) {
	agent := test.NewInMemAgent()
	a := testNode(t, func(c *server.Config) { c.ClusterAgent = agent })
	nodes := []*server.Node{a,
		testNode(t, func(c *server.Config) { c.ClusterAgent = agent; c.DatabaseURL = a.Config().DatabaseURL }),
		testNode(t, func(c *server.Config) { c.ClusterAgent = agent; c.DatabaseURL = a.Config().DatabaseURL }),
	}
	joined := make(chan struct{}, 1)
	for _, n := range nodes {
		defer n.Member().NotifyTopology(joined)()
	}
	poll.UntilSignaled(t, 20*time.Second, "the nodes to see each other", joined, func() bool {
		for _, n := range nodes {
			if len(n.Member().Members()) != len(nodes) {
				return false
			}
		}
		return true
	})

	c := api{t: t, base: a.URL()}
	tn := newTenant(t, c, "Acme")
	k := c.with(tn.key)
	inboxes := []string{tn.inbox}
	for i := range 3 {
		inboxes = append(inboxes, k.must(201, "POST", "/v1/inboxes", obj{"name": fmt.Sprintf("inbox %d", i)})["id"].(string))
	}
	// Each message activates its conversation, and its summary the inbox.
	var convs []string
	for i := range 12 {
		r := inbound(k, inboxes[i%len(inboxes)], phoneN(i), "hello")
		convs = append(convs, r["conversation_id"].(string))
	}
	// want[address][kind]: where the cluster placed each identity.
	want := map[string]map[string]int64{}
	for _, n := range nodes {
		want[n.Member().Address()] = map[string]int64{actors.KindConversation: 0, actors.KindInbox: 0}
	}
	place := func(kind string, ids []string) {
		for _, id := range ids {
			pid := a.Member().Cluster.Get(id, kind)
			if pid == nil {
				t.Fatalf("no activation of %s %s", kind, id)
			}
			want[pid.Address][kind]++
		}
	}
	place(actors.KindConversation, convs)
	place(actors.KindInbox, inboxes)
	placed := time.Now()

	wake := make(chan struct{}, 1)
	for _, n := range nodes {
		defer n.Member().NotifyHeartbeats(wake)()
	}
	admin := api{t: t, token: testAdminToken}
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("want %v; %s", want, last)
		}
	}()
	poll.UntilSignaled(t, 20*time.Second, "every node to show every member's activations", wake, func() bool {
		for _, n := range nodes {
			admin.base = n.URL()
			cl := admin.must(200, "GET", "/v1/admin/cluster", nil)
			self, selves := str(t, cl, "self"), 0
			got := map[string]map[string]int64{}
			var ids []string
			for _, m := range list(t, cl, "members") {
				o := m.(obj)
				ids = append(ids, str(t, o, "id"))
				if kinds := strs(t, o, "kinds"); !slices.IsSorted(kinds) {
					t.Fatalf("%s lists kinds out of order: %v", n.Member().Address(), kinds)
				}
				if o["self"] == true {
					selves++
					if str(t, o, "id") != self || str(t, o, "address") != n.Member().Address() {
						t.Fatalf("%s marks %v as itself, answers self %q", n.Member().Address(), o, self)
					}
				}
				if isNull(t, o, "activations") {
					last = fmt.Sprintf("%s shows %v without activations", n.Member().Address(), o)
					return false
				}
				act := sub(t, o, "activations")
				got[str(t, o, "address")] = map[string]int64{
					actors.KindConversation: num(t, act, actors.KindConversation), actors.KindInbox: num(t, act, actors.KindInbox)}
			}
			if !slices.IsSorted(ids) {
				t.Fatalf("%s lists members out of id order: %v", n.Member().Address(), ids)
			}
			if selves != 1 {
				t.Fatalf("%s: %d members marked self in %v", n.Member().Address(), selves, cl)
			}
			if !maps.EqualFunc(got, want, maps.Equal) {
				last = fmt.Sprintf("%s shows %v", n.Member().Address(), got)
				return false
			}
		}
		return true
	})
	last = ""
	// Measured, not asserted: how long gossip took to carry the counts.
	t.Logf("every node showed %v %s after the last activation", want, time.Since(placed).Round(time.Millisecond))

	// The admin page of a node shows the same numbers for every member.
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(nodes[1].URL()+"/admin/"),
		chromedp.SetValue(`[data-testid="login-token"]`, testAdminToken),
		chromedp.Click(`[data-testid="login-submit"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx, waitTrue(fmt.Sprintf(`(() => {
		const want = %s, rows = [...document.querySelectorAll("#members tr")];
		const cell = (r, kind) => Number(r.querySelector('[data-kind="' + kind + '"]')?.textContent);
		return rows.length === Object.keys(want).length && rows.every((r) => {
			const w = want[r.children[1].textContent];
			return !!w && cell(r, "conversation") === w.conversation && cell(r, "inbox") === w.inbox;
		});
	})()`, wantJSON)))
	if err != nil {
		t.Fatalf("admin page did not show %s: %v (table: %q)", wantJSON, err, text(t, ctx, "#members"))
	}
}
