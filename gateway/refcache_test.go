package gateway

import (
	"fmt"
	"testing"

	"github.com/switchboard-dev/switchboard/persistence"
)

func TestRefCacheIsBounded(t *testing.T) {
	c := newRefCache(2)
	for i := range 3 {
		c.convs.Add(fmt.Sprint("conv-", i), convRef{accountID: "acc", inboxID: fmt.Sprint("inbox-", i)})
	}
	if n := c.convs.Len(); n != 2 {
		t.Fatalf("%d entries, want the bound 2", n)
	}
	if _, ok := c.convs.Get("conv-0"); ok {
		t.Fatal("the least recently used entry was kept")
	}
	if ref, ok := c.convs.Get("conv-2"); !ok || ref.inboxID != "inbox-2" {
		t.Fatalf("the newest entry: %+v, %v", ref, ok)
	}
}

func TestRefCacheDefaultSize(t *testing.T) {
	c := newRefCache(0)
	for i := range DefaultCacheSize + 1 {
		c.inboxes.Add(fmt.Sprint(i), persistence.Inbox{ID: fmt.Sprint(i)})
	}
	if n := c.inboxes.Len(); n != DefaultCacheSize {
		t.Fatalf("%d entries, want DefaultCacheSize %d", n, DefaultCacheSize)
	}
}
