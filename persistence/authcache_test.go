package persistence

import (
	"testing"
	"time"
)

func TestAuthCache(t *testing.T) {
	now := time.Now()
	h := [32]byte{1}
	p := Principal{AccountID: "acc", CredentialID: "key_1"}
	var c authCache

	// Off (no listener): nothing is kept.
	_, gen, _ := c.get(h, now)
	c.put(h, p, gen, now)
	if _, _, ok := c.get(h, now); ok {
		t.Fatal("cached while off")
	}

	c.reset(true)
	_, gen, _ = c.get(h, now)
	c.put(h, p, gen, now)
	if got, _, ok := c.get(h, now); !ok || got.CredentialID != "key_1" {
		t.Fatalf("on: %+v %v", got, ok)
	}
	if _, _, ok := c.get(h, now.Add(authCacheTTL)); ok {
		t.Fatal("an entry outlived its TTL")
	}

	// A lookup that read the database before a revocation must not store
	// what it read after it.
	c.revoked()
	if _, _, ok := c.get(h, now); ok {
		t.Fatal("a revocation left an entry")
	}
	_, before, _ := c.get(h, now)
	c.revoked()
	c.put(h, p, before, now)
	if _, _, ok := c.get(h, now); ok {
		t.Fatal("a lookup from before a revocation was cached after it")
	}

	// Losing the listener turns the cache off and empties it.
	_, gen, _ = c.get(h, now)
	c.put(h, p, gen, now)
	c.reset(false)
	if _, _, ok := c.get(h, now); ok {
		t.Fatal("entries survived the listener's loss")
	}
}

func TestAuthCacheWaitsForEveryNodesAck(t *testing.T) {
	var c authCache
	if c.expect("rv_off") != nil {
		t.Fatal("acknowledgements expected while no listener runs")
	}
	c.reset(true)
	a, b := c.expect("rv_a"), c.expect("rv_b")
	c.ack("rv_a") // before the transaction said how many nodes there are
	c.expectAcks("rv_a", 2)
	released := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if released(a) {
		t.Fatal("rv_a released after one of two nodes")
	}
	c.ack("rv_unknown") // another node's revocation
	c.ack("rv_a")
	if !released(a) {
		t.Fatal("rv_a not released after both nodes acknowledged")
	}
	c.expectAcks("rv_b", 3)
	c.ack("rv_b")
	if released(b) {
		t.Fatal("rv_b released by one of three")
	}
	// The listener goes: no acknowledgement will come, so nobody waits.
	c.reset(false)
	if !released(b) {
		t.Fatal("a waiter kept waiting after the listener was lost")
	}
}
