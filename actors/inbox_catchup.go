package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// A conversation's node can die between the commit of a change and the
// delivery of its summary to the inbox, which lives on another node; when
// the caller does not retry, nothing else would repair the inbox until the
// conversation's next command. So when a node loses a member, every inbox
// it holds catches up with the read model, which is committed with the
// journal (inbox.State.Reconcile).

// catchUpParallel is how many inboxes of a node read the read model at
// once after a member loss: each blocks its own mailbox meanwhile, and all
// share the database with the conversations taking over the lost member's.
const catchUpParallel = 4

// catchUpTimeout bounds one inbox's catching up.
const catchUpTimeout = 30 * time.Second

// catchUp asks an inbox activation to reconcile with the read model; it
// answers caughtUp. Local only: it never crosses the wire.
type catchUp struct{}

type caughtUp struct {
	repaired int // summaries that were missing
	err      error
}

// localInboxes are a node's inbox activations, by identity.
type localInboxes struct {
	mu   sync.Mutex
	pids map[string]*actor.PID
}

func (l *localInboxes) add(id string, pid *actor.PID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pids == nil {
		l.pids = map[string]*actor.PID{}
	}
	l.pids[id] = pid
}

// remove forgets id's activation if it is pid (and not a newer one).
func (l *localInboxes) remove(id string, pid *actor.PID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.pids[id]; cur != nil && cur.Equal(pid) {
		delete(l.pids, id)
	}
}

func (l *localInboxes) all() []*actor.PID {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*actor.PID, 0, len(l.pids))
	for _, pid := range l.pids {
		out = append(out, pid)
	}
	return out
}

// CatchUpInboxes has this node's inboxes catch up with the read model each
// time the node loses a member, until ctx ends. Run it once per node, after
// SetNode.
func (d *Deps) CatchUpInboxes(ctx context.Context) error {
	node := d.Node()
	if node == nil {
		return errNoNode
	}
	lost := make(chan struct{}, 1)
	defer node.NotifyMemberLost(lost)()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
		}
		start := time.Now()
		inboxes, repaired, err := d.catchUpAll(ctx)
		if ctx.Err() != nil {
			return nil // the node is stopping: its inboxes go with it
		}
		log := d.Log.With("inboxes", inboxes, "repaired", repaired, "took", time.Since(start).Round(time.Millisecond))
		switch {
		case err != nil:
			log.Error("inboxes catching up after a member loss", "err", err)
		case repaired > 0:
			log.Warn("inboxes caught up after a member loss, with summaries the lost member had committed and not delivered")
		default:
			log.Info("inboxes caught up after a member loss")
		}
	}
}

// catchUpAll has every inbox activation of this node catch up, at most
// catchUpParallel at a time.
func (d *Deps) catchUpAll(ctx context.Context) (inboxes, repaired int, err error) {
	pids := d.inboxes.all()
	root := d.Node().System.Root
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, catchUpParallel)
	)
	for _, pid := range pids {
		select {
		case <-ctx.Done():
			wg.Wait()
			return len(pids), repaired, ctx.Err()
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := catchUpOne(root, pid)
			mu.Lock()
			defer mu.Unlock()
			repaired += n
			if err != nil {
				errs = append(errs, fmt.Errorf("inbox %s: %w", pid.Id, err))
			}
		})
	}
	wg.Wait()
	return len(pids), repaired, errors.Join(errs...)
}

// catchUpOne has one inbox activation catch up and returns how many
// summaries it repaired.
func catchUpOne(root *actor.RootContext, pid *actor.PID) (int, error) {
	res, err := root.RequestFuture(pid, &catchUp{}, catchUpTimeout).Result()
	switch {
	case errors.Is(err, actor.ErrDeadLetter):
		return 0, nil // stopped since: its next activation loads afresh
	case err != nil:
		return 0, err
	}
	r, ok := res.(*caughtUp)
	if !ok {
		return 0, fmt.Errorf("unexpected answer %T", res)
	}
	return r.repaired, r.err
}

// catchUp reconciles the inbox with the read model and sends its
// subscribers the changes that were missing.
func (g *inboxGrain) catchUp(ctx actor.Context) *caughtUp {
	if g.st == nil {
		return &caughtUp{} // not loaded yet: it will load the read model as it is
	}
	qctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	rows, closedTotal, err := g.deps.Store.InboxChanges(qctx, g.id, g.st.HeldVersions())
	if err != nil {
		return &caughtUp{err: err}
	}
	changes := g.st.Reconcile(rows, closedTotal)
	for _, u := range changes {
		raw, err := json.Marshal(u.Summary)
		if err != nil {
			continue // a Summary always encodes
		}
		g.remember(u.Summary.ID, u.Summary.Version, raw)
		g.fanout(ctx, u, raw)
	}
	if len(changes) > 0 {
		g.deps.Metrics.InboxRepairs.Add(float64(len(changes)))
		g.log.Warn("inbox repaired from the read model", "conversations", len(changes))
	}
	return &caughtUp{repaired: len(changes)}
}
