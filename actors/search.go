package actors

import (
	"context"
	"github.com/switchboard-dev/switchboard/wire"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/consumers/indexer"
	"github.com/switchboard-dev/switchboard/persistence/listen"
	"github.com/switchboard-dev/switchboard/search"
)

// The search actor is the indexer as a virtual actor: one cluster kind with
// one well-known identity, so pause, resume and stats reach the one
// instance wherever it lives.
const (
	KindSearch     = "search"
	SearchIdentity = "indexer"
)

// SearchDeps is what the search actor needs to index.
type SearchDeps struct {
	Pool *pgxpool.Pool
	// Notices is the node's LISTEN session (the journal's commits).
	Notices *listen.Hub
	Backend search.Backend
	Config  indexer.Config
	Log     *slog.Logger
	// Registry gets the indexer's metrics (nil: not registered); every
	// activation on a node shares them.
	Registry prometheus.Registerer
}

// NewSearchKind is the cluster kind of the search actor.
//
// The cluster can activate the identity twice at once (protoactor-go trap 2 in docs/architecture.md), so
// the activation does not assume it is alone: each runs an Indexer, and the
// indexer's PostgreSQL advisory lock lets exactly one of them follow the
// journal and move the cursor while the other waits as a standby. The
// actor never passivates (no receive timeout), and every node keeps
// pinging it (KeepSearchActive), so after its node dies the next ping
// activates it elsewhere and indexing resumes from the persisted cursor.
func NewSearchKind(d SearchDeps) *protocluster.Kind {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	props := actor.PropsFromProducer(func() actor.Actor { return &searchGrain{deps: d} })
	return protocluster.NewKind(KindSearch, props)
}

// searchGrain runs one Indexer for as long as the activation lives. The
// indexer's loop blocks on the database, so it runs beside the actor; the
// actor's mailbox carries the operator's controls to it.
type searchGrain struct {
	deps   SearchDeps
	ix     *indexer.Indexer
	cancel context.CancelFunc
	done   chan struct{}
}

func (g *searchGrain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *protocluster.ClusterInit:
		// Sent after Started and again after a restart: start only once.
		if g.ix == nil {
			g.start()
		}
	case *actor.Stopped, *actor.Restarting:
		g.stop()
	case *actorpb.SearchControl:
		if msg.Action == actorpb.SearchControl_PAUSE || msg.Action == actorpb.SearchControl_RESUME {
			paused := msg.Action == actorpb.SearchControl_PAUSE
			// Recorded first, so that it outlives this activation. One that
			// cannot be recorded changes nothing: held here alone, it would
			// be undone by the next reading of the record (the database
			// back, another activation), after the operator was told it held.
			c, cancel := context.WithTimeout(context.Background(), searchRequestTimeout/2)
			err := indexer.SetPaused(c, g.deps.Pool, paused)
			cancel()
			if err != nil {
				g.deps.Log.Warn("the operator's pause or resume could not be recorded; nothing changed", "paused", paused, "err", err)
				ctx.Respond(&actorpb.Ack{Error: pbError(wire.CodeUnavailable, "the indexer's state could not be recorded (is the database reachable?); nothing changed, try again")})
				return
			}
			if paused {
				g.ix.Pause()
			} else {
				g.ix.Resume()
			}
		}
		ctx.Respond(statusOf(g.ix.Stats()))
	}
}

func (g *searchGrain) start() {
	log := g.deps.Log.With("component", "indexer")
	g.ix = indexer.New(g.deps.Pool, g.deps.Notices, g.deps.Backend, g.deps.Config, log, g.deps.Registry)
	runCtx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		if err := g.ix.Run(runCtx); err != nil {
			log.Error("search indexer stopped", "err", err)
		}
	}()
}

// stop ends the indexer and waits for it, so its lock and connection are
// released before the node goes on stopping (closing the backend, the pool).
func (g *searchGrain) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.cancel = nil
}

func statusOf(s indexer.Stats) *actorpb.SearchStatus {
	return &actorpb.SearchStatus{Paused: s.Paused, Active: s.Active, LagMs: s.LagMs, Backlog: s.Backlog,
		Indexed: s.Indexed, Skipped: s.Skipped, LastError: s.LastError}
}

// searchRequestTimeout bounds one request to the search actor.
const searchRequestTimeout = 5 * time.Second

// Search is the search actor as the gateway drives it, from any node.
type Search struct {
	deps *Deps
}

// NewSearch returns a client of the search actor over deps' node.
func NewSearch(deps *Deps) *Search { return &Search{deps: deps} }

// Pause stops indexing cluster-wide after the batch in hand. The pause is
// recorded in the database: it holds across restarts, and when the search
// actor moves to another node (its node stopped or died) the new activation
// stays paused, until Resume.
func (s *Search) Pause(ctx context.Context) (indexer.Stats, error) {
	return s.control(ctx, actorpb.SearchControl_PAUSE)
}

// Resume undoes Pause.
func (s *Search) Resume(ctx context.Context) (indexer.Stats, error) {
	return s.control(ctx, actorpb.SearchControl_RESUME)
}

// Stats is the indexer's state as its activation reports it.
func (s *Search) Stats(ctx context.Context) (indexer.Stats, error) {
	return s.control(ctx, actorpb.SearchControl_STATUS)
}

func (s *Search) control(ctx context.Context, action actorpb.SearchControl_Action) (indexer.Stats, error) {
	node := s.deps.Node()
	if node == nil {
		return indexer.Stats{}, errNoNode
	}
	// Bounded even when the caller is not: a search actor being
	// re-activated must not hold an admin page.
	ctx, cancel := context.WithTimeout(ctx, searchRequestTimeout)
	defer cancel()
	res, err := node.Request(ctx, KindSearch, SearchIdentity, &actorpb.SearchControl{Action: action})
	if err != nil {
		return indexer.Stats{}, &wire.Error{Code: wire.CodeUnavailable, Message: "search indexer unavailable"}
	}
	if ack, ok := res.(*actorpb.Ack); ok && ack.Error != nil {
		return indexer.Stats{}, fromPB(ack.Error)
	}
	st, ok := res.(*actorpb.SearchStatus)
	if !ok {
		return indexer.Stats{}, unexpected(KindSearch, res)
	}
	return indexer.Stats{Paused: st.Paused, Active: st.Active, LagMs: st.LagMs, Backlog: st.Backlog,
		Indexed: st.Indexed, Skipped: st.Skipped, LastError: st.LastError}, nil
}

// KeepSearchActive pings the search actor every interval until ctx is done:
// a request activates it if no node holds it (at start, or after its node
// died), so indexing never stops for want of a message. Every node runs
// one; the pings are cheap status requests.
func (s *Search) KeepSearchActive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pingCtx, cancel := context.WithTimeout(ctx, interval)
		_, err := s.Stats(pingCtx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Debug("search actor did not answer its keep-alive", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
