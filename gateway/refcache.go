package gateway

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/switchboard-dev/switchboard/persistence"
)

// DefaultCacheSize bounds each of the gateway's lookup caches when
// Config.CacheSize is zero: a few tens of megabytes at most, and far more
// than the inboxes and conversations a node serves at once.
const DefaultCacheSize = 100_000

// refCache remembers which account and inbox an inbox or a conversation
// belongs to — facts that never change — so most requests need no query to
// authorize. It is bounded (least recently used entries go first) because
// conversation ids arrive without end; a miss costs one indexed read.
type refCache struct {
	inboxes *lru.Cache[string, persistence.Inbox] // inbox id → inbox
	convs   *lru.Cache[string, convRef]           // conversation id → account and inbox
}

type convRef struct{ accountID, inboxID string }

func newRefCache(size int) *refCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	// New fails only for a size below one, excluded above.
	inboxes, _ := lru.New[string, persistence.Inbox](size)
	convs, _ := lru.New[string, convRef](size)
	return &refCache{inboxes: inboxes, convs: convs}
}
