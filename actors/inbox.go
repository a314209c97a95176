package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/wire"
)

// inboxGrain is one activation of an inbox: every non-closed conversation
// summary of the inbox, in memory, indexed for its list and counts. The list
// is never served from the search index.
type inboxGrain struct {
	deps      *Deps
	id        string
	accountID string
	log       *slog.Logger
	st        *inbox.State
	subs      map[string]*subscriber // websocket sessions, by PID

	// encoded caches summaries' JSON at the version held: encoding 50
	// summaries was most of the cost of serving a page, and every summary
	// arrives already encoded by its conversation actor.
	encoded map[string]encodedSummary
}

type encodedSummary struct {
	version int64
	raw     []byte
}

// NewInboxKind is the cluster kind of inbox actors.
func NewInboxKind(deps *Deps) *protocluster.Kind {
	deps.Config.defaults()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &inboxGrain{deps: deps}
	}, actor.WithReceiverMiddleware(recoverMiddleware(deps, KindInbox, func(err error) any {
		return &actorpb.ConversationPage{Error: pbError(wire.CodeUnavailable, err.Error())}
	})))
	return protocluster.NewKind(KindInbox, deps.withDispatcher(props))
}

func (g *inboxGrain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *protocluster.ClusterInit:
		g.id = msg.Identity.Identity
		g.log = g.deps.Log.With("inbox", g.id)
		g.deps.Metrics.activated(KindInbox, 1)
		g.deps.inboxes.add(g.id, ctx.Self())
	case *actor.Stopped:
		if g.id != "" {
			g.deps.Metrics.activated(KindInbox, -1)
			g.deps.inboxes.remove(g.id, ctx.Self())
		}
	case *actorpb.SummaryChanged:
		if err := g.ensure(msg.AccountId); err != nil {
			ctx.Respond(&actorpb.SummaryAck{})
			return
		}
		sum, err := summaryIn(msg)
		if err != nil {
			g.log.Error("undecodable summary", "conversation", msg.ConversationId, "err", err)
			ctx.Respond(&actorpb.SummaryAck{})
			return
		}
		up, applied := g.st.Apply(sum, conversation.Status(msg.WasStatus))
		ctx.Respond(&actorpb.SummaryAck{Applied: applied, Seq: up.Seq})
		if applied {
			g.remember(sum.ID, sum.Version, msg.SummaryJson)
			g.fanout(ctx, up, msg.SummaryJson)
		}
	case *actorpb.SubscribeInbox:
		ctx.Respond(g.subscribe(ctx, msg))
	case *actorpb.UnsubscribeInbox:
		g.unsubscribe(ctx, msg)
	case *actor.Terminated:
		g.terminated(msg)
	case *actorpb.ListConversations:
		ctx.Respond(g.list(msg))
	case *actorpb.NextAssignee:
		ctx.Respond(g.nextAssignee(msg))
	case *catchUp:
		ctx.Respond(g.catchUp(ctx))
	case *actorpb.GetCounts:
		if err := g.ensure(msg.AccountId); err != nil {
			ctx.Respond(&actorpb.InboxCounts{Error: toInboxError(err)})
			return
		}
		counts, _ := json.Marshal(g.st.Counts(msg.AgentId))
		ctx.Respond(&actorpb.InboxCounts{CountsJson: counts, Epoch: g.st.Epoch(), Seq: g.st.Seq()})
	}
}

var errWrongAccount = errors.New("inbox not found")

// summaryIn is the summary a SummaryChanged carries: its fields, or, from
// a sender that sends none (an older node), its JSON.
func summaryIn(msg *actorpb.SummaryChanged) (conversation.Summary, error) {
	if msg.Summary != nil {
		return summaryOf(msg.Summary), nil
	}
	var sum conversation.Summary
	err := json.Unmarshal(msg.SummaryJson, &sum)
	return sum, err
}

// ensure loads the inbox on first use and checks the caller's account.
func (g *inboxGrain) ensure(accountID string) error {
	if g.st == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ib, err := g.deps.Store.GetInbox(ctx, g.id)
		if err != nil {
			return fmt.Errorf("load inbox %s: %w", g.id, err)
		}
		active, closed, closedTotal, err := g.deps.Store.LoadInbox(ctx, g.id, g.deps.Config.ClosedKept)
		if err != nil {
			return fmt.Errorf("load inbox %s conversations: %w", g.id, err)
		}
		// A new epoch per activation: clients holding a (epoch, seq) of an
		// earlier activation get a fresh snapshot instead of a wrong replay.
		epoch := strconv.FormatInt(time.Now().UnixNano(), 36) + randomID()[:6]
		st := inbox.New(g.id, epoch, inbox.Config{ClosedKept: g.deps.Config.ClosedKept, RingSize: g.deps.Config.RingSize})
		st.Load(active, closed, closedTotal)
		g.st, g.accountID = st, ib.AccountID
		g.log.Info("inbox activated", "conversations", st.Len(), "epoch", epoch)
	}
	if accountID != g.accountID {
		return errWrongAccount
	}
	return nil
}

func toInboxError(err error) *actorpb.Error {
	if errors.Is(err, errWrongAccount) {
		return pbError(wire.CodeNotFound, "inbox not found")
	}
	return toPB(err)
}

func (g *inboxGrain) list(msg *actorpb.ListConversations) *actorpb.ConversationPage {
	if err := g.ensure(msg.AccountId); err != nil {
		return &actorpb.ConversationPage{Error: toInboxError(err)}
	}
	f, sort, limit, cursor, err := queryOf(msg.Filter).Resolve(msg.AgentId)
	if err != nil {
		return &actorpb.ConversationPage{Error: pbError(wire.CodeInvalid, err.Error())}
	}
	closed, closedJSON := closedRowsOf(msg.Closed)
	page, err := g.st.List(f, sort, limit, cursor, closed)
	if errors.Is(err, inbox.ErrReadClosed) {
		return &actorpb.ConversationPage{ReadClosed: true, Epoch: g.st.Epoch(), Seq: g.st.Seq()}
	}
	if err != nil {
		return &actorpb.ConversationPage{Error: pbError(wire.CodeInvalid, err.Error())}
	}
	convs := g.encodePage(page.Conversations, closedJSON)
	return &actorpb.ConversationPage{ConversationsJson: convs, NextCursor: page.NextCursor,
		Total: int64(page.Total), Epoch: g.st.Epoch(), Seq: g.st.Seq()}
}

func (g *inboxGrain) remember(id string, version int64, raw []byte) {
	if g.encoded == nil || len(g.encoded) > 2*g.st.Len()+1024 {
		// Entries of conversations the state no longer holds (evicted
		// closed ones) are dropped wholesale rather than tracked.
		g.encoded = make(map[string]encodedSummary, g.st.Len())
	}
	g.encoded[id] = encodedSummary{version: version, raw: raw}
}

// encodePage renders summaries as a JSON array from the cached encodings
// or, for closed conversations from the read model, the rows' own (rows),
// encoding (and caching) only those not seen at their current version.
func (g *inboxGrain) encodePage(convs []conversation.Summary, rows map[string]encodedSummary) []byte {
	buf := make([]byte, 0, 2+len(convs)*768)
	buf = append(buf, '[')
	for i := range convs {
		s := &convs[i]
		e, ok := rows[s.ID]
		if !ok || e.version != s.Version {
			e, ok = g.encoded[s.ID]
		}
		if !ok || e.version != s.Version {
			raw, err := json.Marshal(s)
			if err != nil {
				continue // a Summary always encodes; nothing to send if not
			}
			g.remember(s.ID, s.Version, raw)
			e = encodedSummary{version: s.Version, raw: raw}
		}
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.raw...)
	}
	return append(buf, ']')
}
