package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/server"
)

// The inbox list and counts: filters, sorts, limit, cursor paging, totals,
// epoch/seq.

type listFixture struct {
	*fixture
	// the six conversations of the set-up, by role
	cNew, cEmail, cChat, cClosed, cVoice, cOpen string
	// other is a second agent of the inbox
	other string
}

// newListFixture builds an inbox holding:
//
//	cNew     sms   new      unaddressed  unassigned
//	cEmail   email open     addressed    agent       vip
//	cChat    chat  pending  unaddressed  other       billing
//	cClosed  sms   closed   addressed    unassigned
//	cVoice   voice new      unaddressed  agent       vip      (ringing call)
//	cOpen    sms   open     unaddressed  unassigned  billing
func newListFixture(t *testing.T) *listFixture {
	f := &listFixture{fixture: newFixture(t)}
	id := func(r obj) string { return str(t, r, "conversation_id") }
	f.cNew = id(f.inbound(obj{"phone": "+14155550001"}, "new one"))

	f.cEmail = id(f.inbound(obj{"email": "bob@example.com"}, "mail"))
	f.reply(f.cEmail, obj{"body": "answered"})
	f.patch(f.k, f.cEmail, obj{"assignee_id": f.tn.agentID, "tags_add": []string{"vip"}})

	other := f.k.must(201, "POST", "/v1/agents", obj{"name": "Other", "email": "other@example.com", "inbox_ids": []string{f.tn.inbox}})
	f.other = str(t, other, "agent.id")
	f.cChat = id(f.inbound(obj{"handle": "visitor-1"}, "chat"))
	f.patch(f.k, f.cChat, obj{"status": "pending", "assignee_id": f.other, "tags_add": []string{"billing"}})

	f.cClosed = id(f.inbound(obj{"phone": "+14155550002"}, "bye"))
	f.reply(f.cClosed, obj{"body": "bye"})
	f.patch(f.k, f.cClosed, obj{"status": "closed"})

	f.cVoice = id(f.call(obj{"phone": "+14155550003"}, "call-1", "ringing"))
	f.patch(f.ag, f.cVoice, obj{"assignee_id": f.tn.agentID, "tags_add": []string{"vip"}})

	f.cOpen = id(f.inbound(obj{"phone": "+14155550004"}, "q"))
	f.reply(f.cOpen, obj{"body": "a"})
	f.inbound(obj{"phone": "+14155550004"}, "q again")
	f.patch(f.k, f.cOpen, obj{"tags_add": []string{"billing"}})
	f.settle()
	return f
}

func TestRESTListFilters(t *testing.T) {
	f := newListFixture(t)
	set := func(ids ...string) []string { return ids }
	cases := []struct {
		query string
		agent bool
		want  []string
	}{
		{"", false, set(f.cNew, f.cEmail, f.cChat, f.cVoice, f.cOpen)},
		{"status=closed", false, set(f.cClosed)},
		{"status=new", false, set(f.cNew, f.cVoice)},
		{"status=open", false, set(f.cEmail, f.cOpen)},
		{"status=pending", false, set(f.cChat)},
		{"status=new,closed", false, set(f.cNew, f.cVoice, f.cClosed)},
		{"status=open,open", false, set(f.cEmail, f.cOpen)},
		{allStatuses, false, set(f.cNew, f.cEmail, f.cChat, f.cClosed, f.cVoice, f.cOpen)},
		{"addressed=true", false, set(f.cEmail)},
		{"addressed=false", false, set(f.cNew, f.cChat, f.cVoice, f.cOpen)},
		{"addressed=true&status=closed", false, set(f.cClosed)},
		{"assignee=none", false, set(f.cNew, f.cOpen)},
		{"assignee=" + f.tn.agentID, false, set(f.cEmail, f.cVoice)},
		{"assignee=me", true, set(f.cEmail, f.cVoice)},
		{"assignee=" + f.other, false, set(f.cChat)},
		{"assignee=ag_nobody", false, set()},
		{"channel=email", false, set(f.cEmail)},
		{"channel=chat", false, set(f.cChat)},
		{"channel=voice", false, set(f.cVoice)},
		{"channel=sms", false, set(f.cNew, f.cOpen)},
		{"channel=sms&status=closed", false, set(f.cClosed)},
		{"tag=vip", false, set(f.cEmail, f.cVoice)},
		{"tag=billing", false, set(f.cChat, f.cOpen)},
		{"tag=nope", false, set()},
		{"tag=vip&addressed=false", false, set(f.cVoice)},
		{"assignee=none&tag=billing", false, set(f.cOpen)},
		{"status=new&channel=voice&assignee=me&tag=vip", true, set(f.cVoice)},
		{"sort=oldest&limit=200", false, set(f.cNew, f.cEmail, f.cChat, f.cVoice, f.cOpen)},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			cl := f.k
			if c.agent {
				cl = f.ag
			}
			cl.t = t
			q, _ := url.ParseQuery(c.query)
			ids, page := listIDs(t, cl, f.tn.inbox, q)
			got, want := slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if n := num(t, page, "total"); n != int64(len(c.want)) {
				t.Errorf("total %d, want %d", n, len(c.want))
			}
			if !isNull(t, page, "next_cursor") {
				t.Errorf("next_cursor %v on the only page", page["next_cursor"])
			}
			if str(t, page, "epoch") == "" || num(t, page, "seq") < 1 {
				t.Errorf("epoch/seq: %v %v", page["epoch"], page["seq"])
			}
		})
	}

	t.Run("bad queries", func(t *testing.T) {
		k := f.k
		k.t = t
		for _, q := range []string{"status=archived", "status=open,bogus", "addressed=yes", "addressed=1", "channel=fax",
			"sort=newest", "limit=0", "limit=201", "limit=abc", "limit=-1", "limit=1.5", "cursor=%21%21%21", "cursor=AQ",
			"assignee=me"} {
			expectErr(t, k, 400, "invalid_argument", "GET", "/v1/inboxes/"+f.tn.inbox+"/conversations?"+q, nil)
		}
		// A cursor made for one sort is refused under another.
		ids, page := listIDs(t, k, f.tn.inbox, url.Values{"limit": {"1"}})
		if len(ids) != 1 || isNull(t, page, "next_cursor") {
			t.Fatalf("limit=1: %v", page)
		}
		expectErr(t, k, 400, "invalid_argument", "GET", "/v1/inboxes/"+f.tn.inbox+"/conversations?sort=oldest&cursor="+url.QueryEscape(str(t, page, "next_cursor")), nil)
		// And one made for another inbox is refused there, not read as a
		// position in it.
		second := k.must(201, "POST", "/v1/inboxes", obj{"name": "second"})["id"].(string)
		expectErr(t, k, 400, "invalid_argument", "GET", "/v1/inboxes/"+second+"/conversations?cursor="+url.QueryEscape(str(t, page, "next_cursor")), nil)
	})
}

func TestRESTListSorts(t *testing.T) {
	f := newListFixture(t)
	type row = sortRow
	rowsOf := func(t *testing.T, page obj) []row {
		var out []row
		for _, cv := range list(t, page, "conversations") {
			o := cv.(obj)
			r := row{id: str(t, o, "id"), activity: rfc3339(t, o, "last_activity_at")}
			if !isNull(t, o, "waiting_since") {
				w := rfc3339(t, o, "waiting_since")
				r.waiting = &w
			}
			out = append(out, r)
		}
		return out
	}
	less := map[string]func(a, b row) bool{
		"recent": func(a, b row) bool {
			if !a.activity.Equal(b.activity) {
				return a.activity.After(b.activity)
			}
			return a.id < b.id
		},
		"oldest": func(a, b row) bool {
			if !a.activity.Equal(b.activity) {
				return a.activity.Before(b.activity)
			}
			return a.id < b.id
		},
		"longest_wait": func(a, b row) bool {
			switch {
			case a.waiting == nil && b.waiting == nil:
				return a.id < b.id
			case a.waiting == nil:
				return false
			case b.waiting == nil:
				return true
			case !a.waiting.Equal(*b.waiting):
				return a.waiting.Before(*b.waiting)
			}
			return a.id < b.id
		},
	}
	for _, s := range []string{"", "recent", "oldest", "longest_wait"} {
		t.Run("sort="+s, func(t *testing.T) {
			k := f.k
			k.t = t
			q := url.Values{"status": {"new,open,pending,closed"}}
			if s != "" {
				q.Set("sort", s)
			}
			_, page := listIDs(t, k, f.tn.inbox, q)
			got := rowsOf(t, page)
			if len(got) != 6 {
				t.Fatalf("%d conversations, want 6", len(got))
			}
			name := s
			if name == "" {
				name = "recent"
			}
			want := slices.Clone(got)
			sort.SliceStable(want, func(i, j int) bool { return less[name](want[i], want[j]) })
			if !slices.EqualFunc(got, want, func(a, b row) bool { return a.id == b.id }) {
				t.Errorf("order %v, want %v", ids(got), ids(want))
			}
			switch name {
			case "longest_wait":
				// Addressed ones (waiting_since null) come last: cEmail, cClosed.
				tail := []string{got[4].id, got[5].id}
				if !slices.Contains(tail, f.cEmail) || !slices.Contains(tail, f.cClosed) {
					t.Errorf("addressed conversations not last: %v", ids(got))
				}
				// The earliest waiter of the set-up is cNew.
				if got[0].id != f.cNew {
					t.Errorf("longest wait first is %s, want cNew %s", got[0].id, f.cNew)
				}
			case "recent":
				if got[0].id != f.cOpen {
					t.Errorf("most recent is %s, want cOpen %s", got[0].id, f.cOpen)
				}
			case "oldest":
				if got[0].id != f.cNew {
					t.Errorf("oldest is %s, want cNew %s", got[0].id, f.cNew)
				}
			}
		})
	}

	t.Run("new activity moves a conversation to the top", func(t *testing.T) {
		g := f.in(t)
		g.inbound(obj{"phone": "+14155550001"}, "bump")
		g.settle()
		ids, _ := listIDs(t, g.k, f.tn.inbox, url.Values{})
		if ids[0] != f.cNew {
			t.Errorf("after new activity the first is %s, want %s", ids[0], f.cNew)
		}
		ids, _ = listIDs(t, g.k, f.tn.inbox, url.Values{"sort": {"oldest"}})
		if ids[len(ids)-1] != f.cNew {
			t.Errorf("sort=oldest: the last is %s, want %s", ids[len(ids)-1], f.cNew)
		}
		// A reply addresses cOpen: it drops to the addressed tail of longest_wait.
		g.reply(f.cOpen, obj{"body": "done"})
		g.settle()
		_, page := listIDs(t, g.k, f.tn.inbox, url.Values{"sort": {"longest_wait"}})
		got := rowsOf(t, page)
		pos := slices.IndexFunc(got, func(r row) bool { return r.id == f.cOpen })
		for _, r := range got[pos:] {
			if r.waiting != nil {
				t.Errorf("a waiting conversation %s sorts after addressed %s", r.id, f.cOpen)
			}
		}
	})
}

type sortRow struct {
	id       string
	activity time.Time
	waiting  *time.Time
}

func ids(rs []sortRow) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}

func TestRESTListPagingAndCounts(t *testing.T) {
	f := newListFixture(t)
	// 54 more new conversations: 60 in all, 59 not closed.
	for i := range 54 {
		f.inbound(phoneContact(100+i), fmt.Sprintf("bulk %d", i))
	}
	f.settle()

	t.Run("default limit is 50", func(t *testing.T) {
		k := f.k
		k.t = t
		ids, page := listIDs(t, k, f.tn.inbox, url.Values{})
		if len(ids) != 50 || isNull(t, page, "next_cursor") || num(t, page, "total") != 59 {
			t.Errorf("default page: %d conversations, next_cursor %v, total %v; want 50, a cursor, 59", len(ids), page["next_cursor"], page["total"])
		}
		ids, page = listIDs(t, k, f.tn.inbox, url.Values{"limit": {"200"}})
		if len(ids) != 59 || !isNull(t, page, "next_cursor") {
			t.Errorf("limit=200: %d conversations, next_cursor %v", len(ids), page["next_cursor"])
		}
	})

	for _, q := range []string{"", "sort=oldest", "sort=longest_wait", "status=new", "status=new,open,pending,closed&sort=longest_wait",
		"addressed=false&sort=oldest", "channel=sms", "tag=vip"} {
		t.Run("cursor paging "+q, func(t *testing.T) {
			k := f.k
			k.t = t
			base, _ := url.ParseQuery(q)
			base.Set("limit", "200")
			all, full := listIDs(t, k, f.tn.inbox, base)
			total := num(t, full, "total")
			if int64(len(all)) != total {
				t.Fatalf("one page of %d, total %d", len(all), total)
			}
			epoch := str(t, full, "epoch")
			base.Set("limit", "7")
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				pq := url.Values{}
				for kk, v := range base {
					pq[kk] = v
				}
				if cursor != "" {
					pq.Set("cursor", cursor)
				}
				ids, page := listIDs(t, k, f.tn.inbox, pq)
				if len(ids) > 7 {
					t.Fatalf("page of %d with limit=7", len(ids))
				}
				if num(t, page, "total") != total || str(t, page, "epoch") != epoch {
					t.Errorf("page %d: total %v epoch %v, want %d %s", pages, page["total"], page["epoch"], total, epoch)
				}
				got = append(got, ids...)
				if isNull(t, page, "next_cursor") {
					break
				}
				cursor = str(t, page, "next_cursor")
				if len(ids) != 7 {
					t.Errorf("a page of %d before the last", len(ids))
				}
			}
			if !slices.Equal(got, all) {
				t.Errorf("paged %d ids, want the %d of one page in the same order\n got %v\nwant %v", len(got), len(all), got, all)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("%s on two pages", id)
				}
				seen[id] = true
			}
		})
	}

	t.Run("counts", func(t *testing.T) {
		k, ag := f.k, f.ag
		k.t, ag.t = t, t
		want := map[string]int64{"new": 2 + 54, "open": 2, "pending": 1, "closed": 1, "unaddressed": 4 + 54, "unassigned": 2 + 54,
			"mine": 0, "mine_unaddressed": 0}
		c := k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/counts", nil)
		for key, v := range want {
			if got := num(t, c, key); got != v {
				t.Errorf("counts[%s] = %d, want %d", key, got, v)
			}
		}
		if str(t, c, "epoch") == "" {
			t.Error("counts epoch empty")
		}
		seq := num(t, c, "seq")
		// mine needs an agent token: cEmail and cVoice are the agent's; cVoice waits.
		want["mine"], want["mine_unaddressed"] = 2, 1
		c = ag.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/counts", nil)
		for key, v := range want {
			if got := num(t, c, key); got != v {
				t.Errorf("agent counts[%s] = %d, want %d", key, got, v)
			}
		}
		// The list and the counts name the same state; one change is one seq.
		_, page := listIDs(t, k, f.tn.inbox, url.Values{"limit": {"1"}})
		if num(t, page, "seq") != seq || str(t, page, "epoch") != str(t, c, "epoch") {
			t.Errorf("list at %v/%v, counts at %v/%d", page["epoch"], page["seq"], c["epoch"], seq)
		}
		g := f.in(t)
		g.patch(g.k, f.cNew, obj{"status": "open"})
		g.settle()
		c = k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/counts", nil)
		if num(t, c, "seq") != seq+1 || num(t, c, "new") != 55 || num(t, c, "open") != 3 {
			t.Errorf("after one change: seq %d (want %d), new %d, open %d", num(t, c, "seq"), seq+1, num(t, c, "new"), num(t, c, "open"))
		}
	})
}

// TestRESTListClosedBeyondMemory: with an inbox keeping two closed
// conversations in memory (SWITCHBOARD_INBOX_CLOSED_KEPT), a list that
// includes closed ones still pages through all of them, in the order and
// with the filters the API defines, as the read model holds them.
func TestRESTListClosedBeyondMemory(t *testing.T) {
	n := testNode(t, func(c *server.Config) { c.InboxClosedKept = 2 })
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Archive")
	f := &fixture{t: t, n: n, c: c, tn: tn, k: c.with(tn.key), ag: c.with(tn.agentToken), known: map[string]int64{}}
	for i := range 7 {
		id := str(t, f.inbound(phoneContact(300+i), "hello"), "conversation_id")
		if i == 3 {
			continue // stays open
		}
		req := obj{"status": "closed"}
		if i%2 == 0 {
			req["assignee_id"] = tn.agentID
		}
		f.patch(f.k, id, req)
	}
	f.settle()
	truth := func(where, order string) []string {
		rows, err := n.Store().Pool().Query(context.Background(),
			`SELECT id FROM conversations WHERE inbox_id = $1 AND `+where+` ORDER BY `+order, tn.inbox)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	all := func(c api, q url.Values) ([]string, int64) {
		var ids []string
		for range 20 {
			page, p := listIDs(t, c, tn.inbox, q)
			ids = append(ids, page...)
			next, _ := p["next_cursor"].(string)
			if next == "" {
				return ids, num(t, p, "total")
			}
			q.Set("cursor", next)
		}
		t.Fatalf("%v: no end after 20 pages", q)
		return nil, 0
	}
	for _, tc := range []struct {
		name  string
		c     api
		q     url.Values
		where string
		order string
	}{
		{"closed", f.k, url.Values{"status": {"closed"}, "limit": {"2"}},
			`status = 'closed'`, `last_activity_at DESC, id COLLATE "C"`},
		{"all oldest", f.k, url.Values{"status": {"new,open,pending,closed"}, "sort": {"oldest"}, "limit": {"3"}},
			`true`, `last_activity_at, id COLLATE "C"`},
		{"mine closed", f.ag, url.Values{"status": {"closed"}, "assignee": {"me"}, "limit": {"1"}},
			`status = 'closed' AND assignee_id = '` + tn.agentID + `'`, `last_activity_at DESC, id COLLATE "C"`},
		{"unassigned longest wait", f.k, url.Values{"status": {"closed,new"}, "assignee": {"none"}, "sort": {"longest_wait"}, "limit": {"2"}},
			`status IN ('closed', 'new') AND assignee_id IS NULL`, `waiting_since NULLS LAST, id COLLATE "C"`},
	} {
		got, total := all(tc.c, tc.q)
		want := truth(tc.where, tc.order)
		if len(want) < 2 || !slices.Equal(got, want) {
			t.Errorf("%s:\n got  %v\n want %v", tc.name, got, want)
		}
		if total != int64(len(want)) {
			t.Errorf("%s: total %d, want %d", tc.name, total, len(want))
		}
	}
	// A websocket snapshot is the first page under its filter: the oldest
	// closed conversations, which the inbox no longer holds.
	ws := mustWS(t, n.URL(), wsOpts{token: tn.key})
	_, snap := ws.subscribe(tn.inbox, obj{"filter": obj{"status": "closed", "sort": "oldest", "limit": 3}})
	var got []string
	for _, cv := range snap.m["conversations"].([]any) {
		got = append(got, str(t, cv.(obj), "id"))
	}
	if want := truth(`status = 'closed'`, `last_activity_at, id COLLATE "C"`)[:3]; !slices.Equal(got, want) {
		t.Errorf("snapshot, closed oldest:\n got  %v\n want %v", got, want)
	}
	// Its total counts the closed conversations the inbox does not hold by
	// the whole filter, not only by status.
	_, snap = ws.subscribe(tn.inbox, obj{"filter": obj{"status": "closed", "assignee": "none", "limit": 1}})
	if got, want := num(t, snap.m, "total"), len(truth(`status = 'closed' AND assignee_id IS NULL`, `id`)); got != int64(want) {
		t.Errorf("snapshot, closed unassigned: total %d, want %d", got, want)
	}
}
