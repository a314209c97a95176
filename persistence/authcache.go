package persistence

import (
	"sync"
	"time"
)

// authCache remembers resolved credentials, so that a request costs no
// database round trip to authenticate — while, and only while, this node
// follows revocations (FollowRevocations): a credential stops working at
// once on the node that revokes it (the revoking call clears the cache before
// it returns) and on every other node when the revocation's NOTIFY arrives,
// within milliseconds of the commit — and the revoking call returns only
// once every node has acknowledged acting on it (or after revocationWait).
// A lost listener connection turns the cache off until the next LISTEN
// succeeds, since a notice could be missed.
//
// generation closes the race between a lookup and a revocation: a lookup
// notes it before reading the database and stores its result only if no
// revocation came in between, so a principal read before a revocation is
// never cached after it.
type authCache struct {
	mu         sync.Mutex
	on         bool
	generation uint64
	entries    map[[32]byte]authEntry
	// awaited are this node's revocations waiting for every node's
	// acknowledgement.
	awaited map[string]*awaitedAcks
}

type awaitedAcks struct {
	done        chan struct{}
	need, acked int // need is 0 until the revoking transaction counted the nodes
}

type authEntry struct {
	p  Principal
	at time.Time
}

const (
	// authCacheTTL bounds how long an entry is trusted even while notices
	// flow: a backstop, not the mechanism.
	authCacheTTL = time.Minute
	// authCacheMax bounds memory: when full, the cache starts over (a
	// cold lookup costs one query).
	authCacheMax = 100_000
)

// get returns the cached principal, if any, and the generation to hand to
// put after a database lookup.
func (c *authCache) get(h [32]byte, now time.Time) (Principal, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return Principal{}, c.generation, false
	}
	e, ok := c.entries[h]
	if !ok || now.Sub(e.at) >= authCacheTTL {
		return Principal{}, c.generation, false
	}
	return e.p, c.generation, true
}

// put stores p if the cache is on and nothing was revoked since generation.
func (c *authCache) put(h [32]byte, p Principal, generation uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on || c.generation != generation {
		return
	}
	if c.entries == nil || len(c.entries) >= authCacheMax {
		c.entries = map[[32]byte]authEntry{}
	}
	c.entries[h] = authEntry{p: p, at: now}
}

// reset forgets every entry, invalidates lookups in flight, and turns the
// cache on or off. Revocations are rare; forgetting everything on each is
// simpler than matching and costs one query per active credential.
func (c *authCache) reset(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = on
	c.generation++
	c.entries = nil
	if !on {
		// No listener: no acknowledgement will reach a revocation in flight.
		for id, a := range c.awaited {
			close(a.done)
			delete(c.awaited, id)
		}
	}
}

// revoked forgets every entry and invalidates lookups in flight, keeping the
// cache on or off as it is.
func (c *authCache) revoked() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	c.entries = nil
}

// expect registers a revocation about to be announced and returns the
// channel that closes once every node acknowledged it — nil while the cache
// is off (no listener). The revoking transaction says how many nodes that
// is (expectAcks).
func (c *authCache) expect(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil
	}
	if c.awaited == nil {
		c.awaited = map[string]*awaitedAcks{}
	}
	a := &awaitedAcks{done: make(chan struct{})}
	c.awaited[id] = a
	return a.done
}

// expectAcks sets how many nodes' acknowledgements revocation id waits for.
func (c *authCache) expectAcks(id string, nodes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.awaited[id]; ok {
		a.need = max(nodes, 1)
		c.releaseLocked(id, a)
	}
}

func (c *authCache) unexpect(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.awaited, id)
}

// ack records a node's acknowledgement of revocation id.
func (c *authCache) ack(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.awaited[id]; ok {
		a.acked++
		c.releaseLocked(id, a)
	}
}

func (c *authCache) releaseLocked(id string, a *awaitedAcks) {
	if a.need > 0 && a.acked >= a.need {
		close(a.done)
		delete(c.awaited, id)
	}
}
