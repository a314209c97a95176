// Package actors holds the conversation and inbox virtual actors: thin
// shells around the pure state machines in domain/conversation and
// domain/inbox that do the I/O (PostgreSQL through persistence) and the
// messaging (through cluster). Engine is the typed front door the gateway
// uses.
package actors

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/metrics"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// Kind names of the virtual actors.
const (
	KindConversation = "conversation"
	KindInbox        = "inbox"
)

// Config tunes the actors.
type Config struct {
	// IdleTimeout passivates a conversation actor that received nothing for
	// this long (snapshot, then stop).
	IdleTimeout time.Duration
	// SnapshotEvery writes a snapshot after this many events.
	SnapshotEvery int
	// CommitTimeout bounds one append's wait for the group commit.
	CommitTimeout time.Duration
	// ClosedKept is how many closed conversations an inbox keeps in memory.
	ClosedKept int
	// RingSize is how many updates an inbox keeps for resuming streams.
	RingSize int
	// TypingInterval is the least time between two typing indicators of one
	// agent in one conversation that are forwarded. Default 2s.
	TypingInterval time.Duration
}

func (c *Config) defaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 100
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 10 * time.Second
	}
	if c.ClosedKept <= 0 {
		c.ClosedKept = 5000
	}
	if c.RingSize <= 0 {
		c.RingSize = 4096
	}
}

// Deps is what the actors need from the rest of the node. Node is set once
// the cluster member has started (the kinds must exist before it starts).
type Deps struct {
	Config Config
	Store  *persistence.Store
	Writer *persistence.Writer
	// Notices is the node's LISTEN session (inbox settings changes).
	Notices *listen.Hub
	Log     *slog.Logger
	Metrics *Metrics
	// Dispatcher runs the grains' mailboxes (internal/workers); nil is
	// protoactor's default, a new goroutine per run.
	Dispatcher actor.Dispatcher

	node atomic.Pointer[cluster.Node]
	// settings caches inbox automation settings (automation.go).
	settings settingsCache
	// deliveryFault, when set (tests only), fails summary deliveries to
	// inboxes for as long as it returns an error.
	deliveryFault atomic.Pointer[func(*actorpb.SummaryChanged) error]
	// inboxes are this node's inbox activations (inbox_catchup.go).
	inboxes localInboxes
	// assignmentFault, when set (tests only), drops the round-robin
	// attempts it returns true for, as if the node died between the
	// contact's event and the assignment.
	assignmentFault atomic.Pointer[func(conversationID string) bool]
}

// withDispatcher has props run on d.Dispatcher, when one is set.
func (d *Deps) withDispatcher(props *actor.Props) *actor.Props {
	if d.Dispatcher == nil {
		return props
	}
	return props.Configure(actor.WithDispatcher(d.Dispatcher))
}

func (d *Deps) dropAssignment(conversationID string) bool {
	f := d.assignmentFault.Load()
	return f != nil && (*f)(conversationID)
}

func (d *Deps) beforeDelivery(msg *actorpb.SummaryChanged) error {
	if f := d.deliveryFault.Load(); f != nil {
		return (*f)(msg)
	}
	return nil
}

// SetNode binds the started cluster member.
func (d *Deps) SetNode(n *cluster.Node) { d.node.Store(n) }

// Node returns the cluster member, or nil before it started.
func (d *Deps) Node() *cluster.Node { return d.node.Load() }

var errNoNode = errors.New("actors: cluster member not started")

// Metrics are the actors' own gauges and counters: the library does not
// export mailbox lengths or per-kind activations.
type Metrics struct {
	Activations    *prometheus.GaugeVec
	Passivations   prometheus.Counter
	Fenced         prometheus.Counter
	Panics         *prometheus.CounterVec
	InboxDelivery  *prometheus.CounterVec
	InboxRepairs   prometheus.Counter
	JournalReplay  prometheus.Histogram
	ActivationTime prometheus.Histogram
	Backlog        *prometheus.GaugeVec

	convActive  atomic.Int64
	inboxActive atomic.Int64
}

// NewMetrics registers the actor metrics on reg (nil: not registered); a
// second engine on the same registry shares them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ns := metrics.Namespace
	return &Metrics{
		Activations: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "actor_activations",
			Help: "Live virtual-actor activations on this node, by kind."}, []string{"kind"})),
		Passivations: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "conversation_passivations_total",
			Help: "Conversation actors stopped after being idle."})),
		Fenced: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "conversation_fenced_total",
			Help: "Appends refused because a newer activation of the conversation exists."})),
		Panics: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "actor_panics_total",
			Help: "Panics turned into error replies, by kind."}, []string{"kind"})),
		InboxDelivery: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "inbox_summary_deliveries_total",
			Help: "Summaries sent from conversations to inboxes, by result."}, []string{"result"})),
		InboxRepairs: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "inbox_repaired_summaries_total",
			Help: "Summaries inboxes took from the read model after a member loss: committed, and never delivered by the lost member."})),
		JournalReplay: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "conversation_activation_replayed_events",
			Help:    "Journal events replayed on top of the snapshot when a conversation activates.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)})),
		ActivationTime: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "conversation_activation_seconds",
			Help:    "Time to restore a conversation (claim epoch, snapshot, tail).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})),
		Backlog: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "actor_requests_in_flight",
			Help: "Requests sent to actors and not yet answered, by kind: the mailbox backlog seen from outside."}, []string{"kind"})),
	}
}

// ActiveConversations is the number of conversation activations on this node.
func (m *Metrics) ActiveConversations() int64 { return m.convActive.Load() }

// ActiveInboxes is the number of inbox activations on this node.
func (m *Metrics) ActiveInboxes() int64 { return m.inboxActive.Load() }

func (m *Metrics) activated(kind string, delta int64) {
	switch kind {
	case KindConversation:
		m.Activations.WithLabelValues(kind).Set(float64(m.convActive.Add(delta)))
	case KindInbox:
		m.Activations.WithLabelValues(kind).Set(float64(m.inboxActive.Add(delta)))
	}
}
