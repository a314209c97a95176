package persistence

import (
	"context"
	"slices"
	"testing"
	"time"
)

// PublishClusterView stores a member's view and answers the other members'
// fresh views of the same cluster: not its own, not another cluster's, not
// one left unrefreshed; views of members long gone are deleted; a retracted
// view is gone at once.
func TestPublishClusterView(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	publish := func(cluster, id string, blocked ...string) []ClusterView {
		t.Helper()
		peers, err := s.PublishClusterView(ctx, cluster, ClusterView{MemberID: id, Members: []string{"a", "b"}, Blocked: blocked}, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return peers
	}
	ids := func(vs []ClusterView) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.MemberID)
		}
		slices.Sort(out)
		return out
	}
	publish("sb", "a")
	publish("other", "x")
	publish("sb", "stale")
	publish("sb", "gone")
	if _, err := s.Pool().Exec(ctx, `UPDATE cluster_views SET updated_at = now() - interval '10 seconds' WHERE member_id = 'stale';
		UPDATE cluster_views SET updated_at = now() - interval '2 hours' WHERE member_id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	peers := publish("sb", "b", "c")
	if got := ids(peers); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("b reads the views of %v, want [a]", got)
	}
	if p := peers[0]; !slices.Equal(p.Members, []string{"a", "b"}) || len(p.Blocked) != 0 {
		t.Fatalf("a's view read back as %+v", p)
	}
	if got := ids(publish("sb", "a")); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a reads %v, want [b]", got)
	}
	var left []string
	rows, err := s.Pool().Query(ctx, `SELECT member_id FROM cluster_views ORDER BY member_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"a", "b", "stale", "x"}) {
		t.Fatalf("rows %v, want the view two hours old deleted", left)
	}
	if err := s.RetractClusterView(ctx, "sb", "b"); err != nil {
		t.Fatal(err)
	}
	if got := ids(publish("sb", "a")); len(got) != 0 {
		t.Fatalf("a reads %v after b retracted its view", got)
	}
}
