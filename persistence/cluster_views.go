package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterView is one member's view of its cluster's membership, as
// published in cluster_views (migration 00026).
type ClusterView struct {
	MemberID string
	Members  []string
	Blocked  []string
}

// clusterViewsKept: views not refreshed for this long are deleted by the
// next publisher (members that stopped without retracting theirs).
const clusterViewsKept = time.Hour

// PublishClusterView stores this member's view of cluster and returns the
// other members' views refreshed within fresh. It also deletes views left
// by members long gone.
func (s *Store) PublishClusterView(ctx context.Context, cluster string, v ClusterView, fresh time.Duration) ([]ClusterView, error) {
	rows, err := s.pool.Query(ctx, `WITH mine AS (
		INSERT INTO cluster_views (cluster, member_id, members, blocked) VALUES ($1, $2, $3, $4)
		ON CONFLICT (cluster, member_id) DO UPDATE SET members = excluded.members, blocked = excluded.blocked, updated_at = now()
	), gone AS (
		DELETE FROM cluster_views WHERE updated_at < now() - make_interval(secs => $6)
	)
	SELECT member_id, members, blocked FROM cluster_views
	WHERE cluster = $1 AND member_id <> $2 AND updated_at > now() - make_interval(secs => $5)`,
		cluster, v.MemberID, nonNil(v.Members), nonNil(v.Blocked), fresh.Seconds(), clusterViewsKept.Seconds())
	if err != nil {
		return nil, fmt.Errorf("persistence: publish cluster view: %w", err)
	}
	peers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClusterView, error) {
		var p ClusterView
		err := r.Scan(&p.MemberID, &p.Members, &p.Blocked)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: publish cluster view: %w", err)
	}
	return peers, nil
}

// RetractClusterView deletes this member's view, when it leaves.
func (s *Store) RetractClusterView(ctx context.Context, cluster, memberID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM cluster_views WHERE cluster = $1 AND member_id = $2`, cluster, memberID); err != nil {
		return fmt.Errorf("persistence: retract cluster view: %w", err)
	}
	return nil
}

// nonNil keeps a NOT NULL array column from receiving NULL for an empty list.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
