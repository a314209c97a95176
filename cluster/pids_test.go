package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestPIDCacheKeepsOnlyWhatItCanUse(t *testing.T) {
	c := newPIDCache(3)
	a := actor.NewPID("node-a:1", "echo/x$1")
	c.put("echo", "x", a)
	if got := c.get("echo", "x", "node-a:1"); !got.Equal(a) {
		t.Fatalf("get on the owner: %v, want %v", got, a)
	}
	if got := c.get("echo", "x", "node-b:1"); got != nil {
		t.Fatalf("get when another member owns the identity: %v, want none", got)
	}
	if got := c.get("other", "x", "node-a:1"); got != nil {
		t.Fatalf("get of another kind: %v, want none", got)
	}
	// A failed request drops the activation it used, not one put since.
	newer := actor.NewPID("node-a:1", "echo/x$2")
	c.put("echo", "x", newer)
	c.drop("echo", "x", a)
	if got := c.get("echo", "x", "node-a:1"); !got.Equal(newer) {
		t.Fatalf("after dropping the older activation: %v, want %v", got, newer)
	}
	c.drop("echo", "x", newer)
	if got := c.get("echo", "x", "node-a:1"); got != nil {
		t.Fatalf("after drop: %v, want none", got)
	}
	// Full, it starts over rather than grow.
	for _, id := range []string{"a", "b", "c", "d"} {
		c.put("echo", id, actor.NewPID("node-a:1", "echo/"+id))
	}
	if n := c.len(); n != 1 {
		t.Fatalf("%d entries after 4 puts into a cache of 3, want 1", n)
	}
}

// selfKind answers with its own PID id, and stops after answering "stop":
// a passivating grain.
func selfKind() *protocluster.Kind {
	return protocluster.NewKind("self", actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			ctx.Respond(wrapperspb.String(ctx.Self().Id))
			if m.Value == "stop" {
				ctx.Stop(ctx.Self())
			}
		}
	}))
}

// A request goes to the remembered activation; once that activation has
// stopped, the next request is answered by a new one, with no error and no
// backoff, and the cache remembers the new one.
func TestRequestFollowsAStoppedActivation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Provider: ProviderSingle, Agent: test.NewInMemAgent(), RequestTimeout: 5 * time.Second}, selfKind())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ask := func(v string) string {
		t.Helper()
		res, err := n.Request(ctx, "self", "x", wrapperspb.String(v))
		if err != nil {
			t.Fatalf("request %q: %v", v, err)
		}
		return res.(*wrapperspb.StringValue).Value
	}
	first := ask("hello")
	cached := n.pids.get("self", "x", n.System.Address())
	if cached == nil || cached.Id != first {
		t.Fatalf("cache after the first request: %v, want the activation %s", cached, first)
	}
	if again := ask("stop"); again != first {
		t.Fatalf("second request served by %s, want the remembered %s", again, first)
	}
	// The activation stopped before its mailbox took another message (a
	// stop is a system message, ahead of any user message): the remembered
	// PID dead-letters and the request goes on to a new activation.
	next := ask("hello")
	if next == first {
		t.Fatalf("answered by %s, which had stopped", first)
	}
	if cached := n.pids.get("self", "x", n.System.Address()); cached == nil || cached.Id != next {
		t.Fatalf("cache after the activation stopped: %v, want the new activation %s", cached, next)
	}
}
