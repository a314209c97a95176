package cluster

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// pidCache remembers where identities are active, so that a request goes
// straight to the activation instead of first asking its owner's placement
// actor for it: that was a second request per request (its future, timer
// and a trip through the one placement actor every lookup of the owner
// shares), ~10% of a node's CPU at ingest.
//
// An entry is used only while its activation's member is still the
// identity's owner, so a change of owner (a member joins, leaves or is
// lost) sends the request to the new owner's placement actor. An entry
// that fails a request is dropped, and a passivated activation answers its
// next request with a dead letter, which the caller retries through the
// owner at once. Fencing in PostgreSQL keeps a conversation's history
// single whichever activation a stale entry reaches.
type pidCache struct {
	mu  sync.RWMutex
	m   map[pidKey]*actor.PID
	max int // entries kept; a full cache starts over
}

type pidKey struct{ kind, identity string }

// defaultPIDCacheSize bounds the cache to a few MB. Past it the cache is
// emptied: each identity then costs one lookup again, and entries for
// activations long passivated do not pile up.
const defaultPIDCacheSize = 1 << 16

func newPIDCache(max int) *pidCache {
	return &pidCache{m: make(map[pidKey]*actor.PID), max: max}
}

// get returns the cached activation of (kind, identity) if it lives on owner.
func (c *pidCache) get(kind, identity, owner string) *actor.PID {
	c.mu.RLock()
	pid := c.m[pidKey{kind, identity}]
	c.mu.RUnlock()
	if pid == nil || pid.Address != owner {
		return nil
	}
	return pid
}

func (c *pidCache) put(kind, identity string, pid *actor.PID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[pidKey{kind, identity}] = pid
}

// drop forgets pid as the activation of (kind, identity), unless another
// request has already put a newer one.
func (c *pidCache) drop(kind, identity string, pid *actor.PID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := pidKey{kind, identity}
	if cur := c.m[k]; cur != nil && cur.Equal(pid) {
		delete(c.m, k)
	}
}

func (c *pidCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
