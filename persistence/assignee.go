package persistence

import (
	"context"
	"fmt"
)

// IsInboxAgent reports whether agentID is an agent of the inbox. An inbox
// belongs to one account, so an agent of another account is never one.
func (s *Store) IsInboxAgent(ctx context.Context, inboxID, agentID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agent_inboxes WHERE inbox_id = $1 AND agent_id = $2)`,
		inboxID, agentID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("persistence: is %s an agent of inbox %s: %w", agentID, inboxID, err)
	}
	return ok, nil
}
