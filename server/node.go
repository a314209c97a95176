// Package server wires one Switchboard node together: configuration, database,
// group-commit writer, search backend and indexer, cluster member with its
// actors, and the HTTP gateway; and stops it gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/consumers/timers"
	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/gateway"
	"github.com/switchboard-dev/switchboard/internal/workers"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen"
	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
	"github.com/switchboard-dev/switchboard/search/typesense"
)

// Node is one running Switchboard process: database, group-commit writer,
// cluster member with its actors, and the HTTP gateway.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    *persistence.Store
	writer   *persistence.Writer
	member   *cluster.Node
	http     *http.Server
	listener net.Listener
	gw       *gateway.Server
	served   chan struct{} // closed when the HTTP server returns
	serveErr error
	failed   chan struct{} // closed by fail
	failOnce sync.Once
	failErr  error

	// Split detection (server/eviction.go), on clusters of several.
	stopEviction context.CancelFunc
	evictionDone chan struct{}

	// hub is the node's one LISTEN session, which every follower of
	// notices (revocations, settings, timers, the journal's consumers)
	// subscribes to.
	hub     *listen.Hub
	stopHub context.CancelFunc
	hubDone chan struct{}

	stopRevocations context.CancelFunc
	revocationsDone chan struct{}

	backend    search.Backend
	stopKeeper context.CancelFunc
	keeperDone chan struct{}

	// Automation: the timer scanner and the inbox settings listener.
	timers         *timers.Scanner
	stopAutomation context.CancelFunc
	automationDone sync.WaitGroup
	deliverer      *webhooks.Deliverer
	stopDeliverer  context.CancelFunc
	delivererDone  chan struct{}
}

// Start brings a node up: schema, database, actors, cluster, HTTP.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	n := &Node{cfg: cfg, log: log, served: make(chan struct{}), failed: make(chan struct{})}
	if err := persistence.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	store, err := persistence.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	n.store = store
	n.hub = listen.New(store.Pool().Config().ConnConfig, log.With("component", "listen"))
	hubCtx, stopHub := context.WithCancel(context.Background())
	n.stopHub, n.hubDone = stopHub, make(chan struct{})
	go func() { defer close(n.hubDone); n.hub.Run(hubCtx) }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.writer = persistence.NewWriter(store.Pool(), persistence.WriterConfig{MaxBatch: cfg.CommitMaxBatch, Committers: cfg.Committers, Window: cfg.CommitWindow,
		Log: log.With("component", "writer")}, reg)

	if n.backend, err = newSearchBackend(ctx, cfg, store, log); err != nil {
		n.closeStorage()
		return nil, err
	}
	sealer, err := newSealer(ctx, cfg, store, log)
	if err != nil {
		n.closeStorage()
		return nil, err
	}
	// Like the indexer: every node runs a deliverer, one delivers.
	whCfg := cfg.Webhooks
	whCfg.AllowPrivate = cfg.WebhookAllowPrivate
	n.deliverer = webhooks.New(store.Pool(), n.hub, sealer, whCfg, log, reg)
	n.StartDeliverer()

	// Grains run on reused goroutines (internal/workers); actorThroughput
	// is protoactor's default messages per mailbox run.
	deps := &actors.Deps{
		Config: actors.Config{IdleTimeout: cfg.IdleTimeout, SnapshotEvery: cfg.SnapshotEvery, ClosedKept: cfg.InboxClosedKept},
		Store:  store, Writer: n.writer, Notices: n.hub, Log: log, Metrics: actors.NewMetrics(reg),
		Dispatcher: workers.New(actorThroughput, time.Second),
	}
	mtls, err := cfg.clusterTLS(ctx, store)
	if err != nil {
		n.closeStorage()
		return nil, err
	}
	member, err := cluster.Start(ctx, cluster.Config{
		Provider: cfg.ClusterProvider, Name: cfg.ClusterName, NodeAddr: cfg.NodeAddr, Seeds: cfg.Seeds,
		AutomanagedPort: cfg.AutomanagedPort, EtcdEndpoints: cfg.EtcdEndpoints, Logger: log, Agent: cfg.ClusterAgent,
		TLS: mtls, SuspectAfter: cfg.ClusterSuspectAfter,
	}, actors.NewConversationKind(deps), actors.NewInboxKind(deps), actors.NewSearchKind(actors.SearchDeps{
		Pool: store.Pool(), Notices: n.hub, Backend: n.backend, Log: log, Registry: reg,
	}))
	if err != nil {
		n.closeStorage()
		return nil, err
	}
	deps.SetNode(member)
	n.member = member
	engine := actors.NewEngine(deps)
	n.startAutomation(deps, engine, reg)

	// Every node keeps the search actor (the indexer) activated somewhere.
	search := actors.NewSearch(deps)
	keepCtx, stopKeeper := context.WithCancel(context.Background())
	n.stopKeeper, n.keeperDone = stopKeeper, make(chan struct{})
	go func() { defer close(n.keeperDone); search.KeepSearchActive(keepCtx, searchKeepAlive) }()

	if cfg.AdminToken == "" {
		log.Warn("SWITCHBOARD_ADMIN_TOKEN is not set: /v1/admin/* and the admin page refuse every caller, and accounts cannot be created")
	}
	gw := gateway.New(gateway.Config{AdminToken: cfg.AdminToken, AllowedOrigins: cfg.AllowedOrigins, WS: cfg.WS, Limits: cfg.Limits, CacheSize: cfg.GatewayCacheSize}, gateway.Deps{
		Store: store, Engine: engine, Node: member, ActorMetrics: deps.Metrics, Registry: reg, Log: log,
		Indexer: search, Search: n.backend, Commits: n.writer, Dispatcher: deps.Dispatcher,
		Webhooks: webhooks.NewEndpoints(store.Pool(), sealer, whCfg), Deliverer: n.deliverer, WebhookAllowPrivate: cfg.WebhookAllowPrivate,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		n.stopAutomationNow()
		n.member.Stop()
		n.closeStorage()
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	n.listener = ln
	// Slow clients are cut (docs/api.md): headers, then the body, each within its
	// time; idle keep-alive connections close.
	to := cfg.HTTPTimeouts.WithDefaults()
	n.http = &http.Server{Handler: gateway.Deadlines(gw.Handler(), to), ReadHeaderTimeout: to.Header, IdleTimeout: to.Idle,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	n.gw = gw
	// Revocations on other nodes close this node's websockets too.
	revCtx, stopRev := context.WithCancel(context.Background())
	n.stopRevocations, n.revocationsDone = stopRev, make(chan struct{})
	go func() { defer close(n.revocationsDone); gw.FollowRevocations(revCtx, n.hub) }()
	go func() {
		n.serveErr = n.http.Serve(ln)
		close(n.served)
		if !errors.Is(n.serveErr, http.ErrServerClosed) {
			n.fail(fmt.Errorf("http server: %w", n.serveErr))
		}
	}()
	evCtx, stopEviction := context.WithCancel(context.Background())
	n.stopEviction, n.evictionDone = stopEviction, make(chan struct{})
	go func() {
		defer close(n.evictionDone)
		if cfg.ClusterProvider != "single" {
			n.watchEviction(evCtx)
		}
	}()
	return n, nil
}

// startAutomation runs the inbox settings listener, the timer scanner (one
// active per cluster, see consumers/timers) and the inboxes' catching up
// after a member loss, until stopAutomationNow.
func (n *Node) startAutomation(deps *actors.Deps, engine *actors.Engine, reg prometheus.Registerer) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopAutomation = cancel
	n.timers = timers.New(n.store.Pool(), n.hub, func(ctx context.Context, d timers.Due) error {
		return engine.Tick(ctx, d.ConversationID, d.AccountID, d.InboxID, d.Now, d.SettingsVersion)
	}, timers.Config{}, n.log.With("component", "timers"), reg)
	n.automationDone.Go(func() { deps.FollowSettings(ctx) })
	n.automationDone.Go(func() { _ = n.timers.Run(ctx) })
	n.automationDone.Go(func() { _ = deps.CatchUpInboxes(ctx) })
}

func (n *Node) stopAutomationNow() {
	if n.stopAutomation != nil {
		n.stopAutomation()
		n.automationDone.Wait()
	}
}

// Failed is closed when the node can no longer serve: its HTTP server
// stopped on its own, or the cluster split around it (watchEviction). Err
// then says why; the node still needs its Stop.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// Err is why the node failed, once Failed is closed.
func (n *Node) Err() error { <-n.failed; return n.failErr }

// fail records why the node can no longer serve, the first time.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() { n.failErr = err; close(n.failed) })
}

// Config is the configuration the node was started with.
func (n *Node) Config() Config { return n.cfg }

// Store is the node's database handle.
func (n *Node) Store() *persistence.Store { return n.store }

// Member is the node's cluster membership.
func (n *Node) Member() *cluster.Node { return n.member }

// Gateway is the node's HTTP gateway.
func (n *Node) Gateway() *gateway.Server { return n.gw }

// URL is where the node serves HTTP.
func (n *Node) URL() string { return "http://" + n.listener.Addr().String() }

// Stop is the graceful stop: stop accepting and finish in-flight requests,
// stop the actors (each snapshots in Stopped) and leave the cluster, flush
// pending commits, close the database.
func (n *Node) Stop(ctx context.Context) error {
	var errs []error
	shutdownCtx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout)
	defer cancel()
	n.gw.Drain()
	if n.cfg.ShutdownDrain > 0 {
		// The drain's length is the point: the time clients get to send
		// their next request, answered with Connection: close.
		select {
		case <-time.After(n.cfg.ShutdownDrain):
		case <-shutdownCtx.Done():
		}
	}
	// Shutdown does not track hijacked connections: the websockets finish
	// their frames in flight beside it, while the actors still run.
	wsClosed := make(chan struct{})
	go func() { n.gw.CloseWebsockets(); close(wsClosed) }()
	if err := n.http.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	<-wsClosed
	<-n.served
	if err := n.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	n.stopAutomationNow()
	n.stopRevocations()
	<-n.revocationsDone
	n.stopKeeper()
	<-n.keeperDone
	// Before leaving the cluster: the watcher retracts this member's view.
	n.stopEviction()
	<-n.evictionDone
	// Stopping the member stops its actors: conversations hand their last
	// snapshots to the writer, the search actor releases its lock.
	n.member.Stop()
	if err := n.closeStorage(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n *Node) closeStorage() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if n.writer != nil {
		err = n.writer.Close(ctx)
	}
	n.StopDeliverer()
	if n.backend != nil {
		n.backend.Close()
	}
	n.stopHub()
	<-n.hubDone
	n.store.Close()
	return err
}

// StartDeliverer runs the node's webhook deliverer (Start does; tests
// restart it in-process after StopDeliverer).
func (n *Node) StartDeliverer() {
	ctx, stop := context.WithCancel(context.Background())
	n.stopDeliverer, n.delivererDone = stop, make(chan struct{})
	go func() {
		defer close(n.delivererDone)
		if err := n.deliverer.Run(ctx); err != nil {
			n.log.Error("webhook deliverer stopped", "err", err)
		}
	}()
}

// StopDeliverer stops the deliverer and waits for it: attempts in flight
// are abandoned (their deliveries stay pending, so nothing is lost).
func (n *Node) StopDeliverer() {
	if n.stopDeliverer != nil {
		n.stopDeliverer()
		<-n.delivererDone
		n.stopDeliverer = nil
	}
}

// newSealer seals webhook secrets with SWITCHBOARD_SECRET_KEY, or without
// it with a key the database keeps for every node (made by the first), so
// that webhooks work on the contract's settings alone. Secrets sealed under
// the database's key still open once the variable is set.
func newSealer(ctx context.Context, cfg Config, store *persistence.Store, log *slog.Logger) (*webhooks.Sealer, error) {
	if cfg.SecretKey != "" {
		kept, err := store.SealingKey(ctx, nil)
		if err != nil {
			return nil, err
		}
		if kept == "" {
			return webhooks.NewSealer(cfg.SecretKey)
		}
		return webhooks.NewSealer(cfg.SecretKey, kept)
	}
	kept, err := store.SealingKey(ctx, webhooks.NewKey)
	if err != nil {
		return nil, err
	}
	log.Warn("SWITCHBOARD_SECRET_KEY is not set: webhook secrets are sealed with a key kept in the database; set it to keep the key apart from the data")
	return webhooks.NewSealer(kept)
}

// searchKeepAlive is how often every node pings the search actor: the
// longest indexing pause after the node holding it dies, beyond the
// cluster's own failure detection.
const searchKeepAlive = 2 * time.Second

// newSearchBackend returns the configured search backend. A Typesense server
// that is down at start is not fatal: search is a consumer, and the indexer
// catches up when it returns.
func newSearchBackend(ctx context.Context, cfg Config, store *persistence.Store, log *slog.Logger) (search.Backend, error) {
	if cfg.Search != "typesense" {
		return pgsearch.New(store.Pool()), nil
	}
	b, err := typesense.New(typesense.Config{URL: cfg.TypesenseURL, APIKey: cfg.TypesenseAPIKey})
	if err != nil {
		return nil, fmt.Errorf("typesense: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.EnsureCollection(ctx); err != nil {
		log.Warn("typesense is not reachable yet; indexing will retry", "url", cfg.TypesenseURL, "err", err)
	}
	return b, nil
}

const actorThroughput = 300
