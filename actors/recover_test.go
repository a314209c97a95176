package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/wire"
)

// TestPanicBecomesErrorReply: a grain that panics answers the request with
// an error (instead of leaving the caller to time out) and its activation
// stops, so the next request gets a fresh, reloaded one rather than a
// restarted instance with its memory wiped under the same PID.
func TestPanicBecomesErrorReply(t *testing.T) {
	deps := &Deps{Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())}
	system := actor.NewActorSystem()
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actorpb.ConversationCommand); ok {
			panic("boom")
		}
	}, actor.WithReceiverMiddleware(recoverMiddleware(deps, KindConversation, func(err error) any {
		return &actorpb.ConversationReply{Error: pbError(codeRetry, err.Error())}
	})))
	pid := system.Root.Spawn(props)
	res, err := system.Root.RequestFuture(pid, &actorpb.ConversationCommand{}, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("the caller got no answer: %v", err)
	}
	reply, ok := res.(*actorpb.ConversationReply)
	if !ok || reply.Error == nil || wire.Code(reply.Error.Code) != codeRetry {
		t.Fatalf("reply = %#v, want a retry error", res)
	}
	if got := testutil.ToFloat64(deps.Metrics.Panics.WithLabelValues(KindConversation)); got != 1 {
		t.Fatalf("actor_panics_total = %v, want 1", got)
	}
	// The activation is gone: a further request is a dead letter.
	if _, err := system.Root.RequestFuture(pid, &actorpb.ConversationCommand{}, 2*time.Second).Result(); err == nil {
		t.Fatal("the panicked activation still answers")
	}
}
