package cluster

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// stuckWatch is a watch actor that does not answer until released: to the
// other members its node looks frozen, while its grains still serve.
type stuckWatch struct{ release <-chan struct{} }

func (s stuckWatch) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Touch); ok {
		<-s.release
	}
}

// A member that stops answering pings is routed around after SuspectAfter,
// though its connections stay open, and gets its identities back once it
// answers again.
func TestSilentMemberIsRoutedAroundUntilItAnswers(t *testing.T) {
	agent := test.NewInMemAgent()
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()
	a := startNode(t, Config{Provider: ProviderSingle, Agent: agent, SuspectAfter: 300 * time.Millisecond})
	b := startNode(t, Config{Provider: ProviderSingle, Agent: agent, SuspectAfter: 300 * time.Millisecond,
		watchActor: func() actor.Actor { return stuckWatch{release: release} }})
	awaitMembers(t, 2, a, b)
	id := ""
	for i := 0; id == "" && i < 200; i++ {
		if Owner("id-"+strconv.Itoa(i), []string{a.Address(), b.Address()}) == b.Address() {
			id = "id-" + strconv.Itoa(i)
		}
	}
	if id == "" {
		t.Fatal("no identity of 200 is owned by b")
	}
	servedBy := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := a.Request(ctx, "echo", id, wrapperspb.String(id))
		if err != nil {
			t.Fatalf("request %s: %v", id, err)
		}
		return res.(*wrapperspb.StringValue).Value
	}
	poll.Until(t, 10*time.Second, "a to route b's identity to itself", func() bool {
		return servedBy() == a.Address()+"|"+id
	})
	unblock()
	poll.Until(t, 10*time.Second, "b to serve its identity again", func() bool {
		return servedBy() == b.Address()+"|"+id
	})
}
