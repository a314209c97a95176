package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// FindItem returns the timeline item with the given id in a conversation
// (found false when there is none). A delivery status report names a message
// by id; the items_item_id index (migration 00005) makes it one index probe.
func (s *Store) FindItem(ctx context.Context, conversationID, itemID string) (conversation.Item, bool, error) {
	return s.findItem(ctx, `SELECT item FROM items WHERE conversation_id = $1 AND (item->>'id') = $2`, conversationID, itemID)
}

// FindCall returns the item of a call of the conversation, if it has one.
// It reads the conversation's items (no index has call ids): the actor asks
// only for a call its state no longer remembers, after hundreds of calls.
func (s *Store) FindCall(ctx context.Context, conversationID, callID string) (conversation.Item, bool, error) {
	return s.findItem(ctx, `SELECT item FROM items WHERE conversation_id = $1 AND (item->>'call_id') = $2
		ORDER BY seq DESC LIMIT 1`, conversationID, callID)
}

func (s *Store) findItem(ctx context.Context, query, conversationID, key string) (conversation.Item, bool, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, query, conversationID, key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return conversation.Item{}, false, nil
	}
	if err != nil {
		return conversation.Item{}, false, fmt.Errorf("persistence: find item %s in %s: %w", key, conversationID, err)
	}
	var it conversation.Item
	if err := json.Unmarshal(raw, &it); err != nil {
		return conversation.Item{}, false, fmt.Errorf("persistence: find item %s in %s: decode: %w", key, conversationID, err)
	}
	return it, true, nil
}
