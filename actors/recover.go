package actors

import (
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
)

// recoverMiddleware turns a panic in a grain into an error reply and stops
// the activation. Left alone, protoactor restarts the grain with a fresh
// instance under the same PID, its state gone and the request unanswered
// (docs/architecture.md); stopping instead makes the next request activate and
// reload a clean one, and fencing keeps the two from both writing.
func recoverMiddleware(deps *Deps, kind string, errReply func(error) any) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				deps.Metrics.Panics.WithLabelValues(kind).Inc()
				deps.Log.Error("actor panicked; stopping the activation", "kind", kind, "self", c.Self().String(),
					"message", fmt.Sprintf("%T", env.Message), "panic", p, "stack", string(debug.Stack()))
				// Poison before replying: a request the caller sends after
				// this reply then queues behind the poison pill and reaches a
				// fresh activation.
				system := c.ActorSystem()
				system.Root.Poison(c.Self())
				if env.Sender != nil {
					system.Root.Send(env.Sender, errReply(fmt.Errorf("%s actor failed: %v", kind, p)))
				}
			}()
			next(c, env)
		}
	}
}
