// Package cluster starts this node's protoactor-go cluster member and is the
// one way the rest of Switchboard talks to virtual actors: Request, a small
// wrapper with its own deadline and retries (docs/architecture.md: RequestFuture
// options leak into a process-global default, and a dead letter is not
// retried by the library for us).
package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard-dev/switchboard/cluster/eviction"
)

// Providers a node can use to find the others.
const (
	ProviderSingle      = "single"
	ProviderAutomanaged = "automanaged"
	ProviderEtcd        = "etcd"
)

// Config of this node's cluster membership.
type Config struct {
	Provider string // single, automanaged or etcd
	Name     string // nodes with the same name form one cluster
	NodeAddr string // host:port of actor remoting; port 0 picks one
	// Seeds are the other nodes: their node addresses, whose port + 1 is
	// their automanaged membership endpoint; or, with AutomanagedPort set,
	// those endpoints' addresses themselves.
	Seeds []string
	// AutomanagedPort is where this node's automanaged membership endpoint
	// listens; 0 takes the port of NodeAddr + 1 (see automanagedAddrs).
	AutomanagedPort int
	EtcdEndpoints   []string
	// StartTimeout bounds joining: with etcd down StartMember would block forever.
	StartTimeout time.Duration
	// RequestTimeout is the deadline of one try of a request.
	RequestTimeout time.Duration
	// LookupTimeout bounds asking a member to activate an identity (a spawn
	// at most): one that takes longer is treated as unreachable and the
	// try goes to the next member in rank.
	LookupTimeout time.Duration
	// SuspectAfter is how long another member may leave this node's pings
	// unanswered before its identities go to the next member, until it
	// answers again (a frozen member closes no connection; a dead one is
	// routed around at once, without waiting for this). Default 2 s.
	SuspectAfter time.Duration
	// watchActor replaces the actor answering the others' pings (tests:
	// one that does not answer looks frozen).
	watchActor actor.Producer
	// Agent, when set with the single provider, is shared by several nodes
	// in one process (tests of cross-node behaviour).
	Agent *test.InMemAgent
	// TLS, when set, authenticates and encrypts all traffic between members
	// (actor remoting and the automanaged membership endpoint) with mutual
	// TLS from the cluster CA. Without it anyone who reaches the node
	// address can send any actor message.
	TLS    *MutualTLS
	Logger *slog.Logger
}

// Node is this process's cluster member.
type Node struct {
	Cluster *cluster.Cluster
	System  *actor.ActorSystem
	cfg     Config
	log     *slog.Logger
	refused *refusalCounter
	router  *router
	pids    *pidCache

	stopWatch chan struct{}
	watchDone chan struct{}
	stopOnce  sync.Once
}

// Start joins the cluster with the given kinds and returns once the member
// has started, or an error after cfg.StartTimeout.
func Start(ctx context.Context, cfg Config, kinds ...*cluster.Kind) (*Node, error) {
	if cfg.Name == "" {
		cfg.Name = "switchboard"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = time.Second
	}
	if cfg.SuspectAfter == 0 {
		cfg.SuspectAfter = 2 * time.Second
	}
	if cfg.watchActor == nil {
		cfg.watchActor = func() actor.Actor { return watchActor{} }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	host, port, err := splitAddr(cfg.NodeAddr)
	if err != nil {
		return nil, err
	}
	var provider cluster.ClusterProvider
	var c *cluster.Cluster // the automanaged endpoint reads it once started
	closeOnFail := func() {}
	switch cfg.Provider {
	case "", ProviderSingle:
		agent := cfg.Agent
		if agent == nil {
			agent = test.NewInMemAgent()
		}
		provider = test.NewTestProvider(agent)
	case ProviderAutomanaged:
		amPort, seeds, err := automanagedAddrs(advertisedHost(host), port, cfg.AutomanagedPort, cfg.Seeds)
		if err != nil {
			return nil, err
		}
		p, l, err := automanagedProvider(host, amPort, seeds, cfg.TLS, &c, log)
		if err != nil {
			return nil, err
		}
		provider, closeOnFail = p, func() { _ = l.Close() }
	case ProviderEtcd:
		if len(cfg.EtcdEndpoints) == 0 {
			return nil, errors.New("cluster: etcd needs SWITCHBOARD_ETCD_ENDPOINTS")
		}
		p, err := etcd.NewWithConfig("/switchboard/"+cfg.Name, clientv3.Config{Endpoints: cfg.EtcdEndpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd client: %w", err)
		}
		provider = p
	default:
		return nil, fmt.Errorf("cluster: unknown provider %q (want single, automanaged or etcd)", cfg.Provider)
	}
	// The library narrates every membership step at info; keep its warnings
	// and errors unless the node itself logs at debug.
	libLog := slog.New(atLeast{log.Handler(), slog.LevelWarn}).With("lib", "protoactor")
	if log.Enabled(ctx, slog.LevelDebug) {
		libLog = log.With("lib", "protoactor")
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(system *actor.ActorSystem) *slog.Logger {
		return libLog
	}))
	refused := &refusalCounter{log: log}
	var remoteOpts []remote.ConfigOption
	if cfg.TLS != nil {
		server, dial := cfg.TLS.remoteOptions(refused.refused)
		remoteOpts = append(remoteOpts, remote.WithServerOptions(server...), remote.WithDialOptions(dial))
	} else {
		warnPlaintext(log, cfg.Provider, host)
	}
	if ad := advertisedHost(host); ad != host && port != 0 {
		// Listening on every interface, the node is reached at one of them:
		// the library would announce the listener's "[::]:port".
		remoteOpts = append(remoteOpts, remote.WithAdvertisedHost(net.JoinHostPort(ad, strconv.Itoa(port))))
	}
	ccfg := cluster.Configure(cfg.Name, provider, disthash.New(), remote.Configure(host, port, remoteOpts...),
		cluster.WithKinds(kinds...), cluster.WithRequestTimeout(cfg.RequestTimeout))
	c = cluster.New(system, ccfg)
	// Subscribed before the member starts: the first topology must not be missed.
	router := newRouter()
	system.EventStream.Subscribe(router.observe)

	started := make(chan any, 1)
	go func() {
		defer func() { started <- recover() }()
		c.StartMember()
	}()
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case p := <-started:
		if p != nil {
			closeOnFail()
			return nil, fmt.Errorf("cluster: start member: %v", p)
		}
	case <-timer.C:
		closeOnFail()
		return nil, fmt.Errorf("cluster: joining with provider %s took longer than %s", cfg.Provider, cfg.StartTimeout)
	case <-ctx.Done():
		closeOnFail()
		return nil, ctx.Err()
	}
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(cfg.watchActor), watchActorName); err != nil {
		c.Shutdown(false)
		closeOnFail()
		return nil, fmt.Errorf("cluster: spawn %s: %w", watchActorName, err)
	}
	n := &Node{Cluster: c, System: system, cfg: cfg, log: log, refused: refused, router: router,
		pids: newPIDCache(defaultPIDCacheSize), stopWatch: make(chan struct{}), watchDone: make(chan struct{})}
	go func() {
		defer close(n.watchDone)
		n.watchMembers(n.stopWatch)
	}()
	return n, nil
}

// warnPlaintext says, once at start, when members talk without TLS where
// someone else could reach them.
func warnPlaintext(log *slog.Logger, provider, host string) {
	if provider == ProviderAutomanaged || provider == ProviderEtcd {
		log.Warn("node-to-node traffic is neither authenticated nor encrypted (SWITCHBOARD_CLUSTER_INSECURE): anyone who reaches this node's remoting port can send any actor message for any account; without it, members use mutual TLS from the database's CA", "provider", provider)
		return
	}
	if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
		log.Warn("actor remoting listens beyond loopback without TLS: anyone who reaches it can send any actor message; set SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT and SWITCHBOARD_NODE_KEY", "host", host)
	}
}

// RefusedConnections counts the connections to this node's remoting port
// refused during the TLS handshake (no certificate, or one the cluster CA
// did not sign).
func (n *Node) RefusedConnections() int64 { return n.refused.n.Load() }

func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: node address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: node address %q: bad port", addr)
	}
	return host, port, nil
}

// Address is this node's remoting address.
func (n *Node) Address() string { return n.System.Address() }

// ErrUnavailable is returned when no activation answered within the deadline.
var ErrUnavailable = errors.New("actor unavailable")

// Request sends msg to the virtual actor (kind, identity) and waits for its
// answer until ctx is done. A try that times out or reaches a dead
// activation is retried with a fresh lookup: commands carry idempotency keys,
// so a command that ran before its answer was lost is not applied twice.
// A member that cannot be reached (its connection closed, or it did not
// answer the activation within LookupTimeout) is left out for the next try,
// which activates the identity on the member next in rank: where the
// cluster moves it once the member is gone.
func (n *Node) Request(ctx context.Context, kind, identity string, msg any) (any, error) {
	backoff := 2 * time.Millisecond
	var skip []string
	for attempt := 1; ; attempt++ {
		timeout := n.cfg.RequestTimeout
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < timeout {
				timeout = left
			}
		}
		if timeout <= 0 {
			return nil, fmt.Errorf("cluster: request %s/%s: %w", kind, identity, ErrUnavailable)
		}
		owner := n.router.owner(kind, identity, skip)
		if owner == "" {
			skip = nil // every member failed this request once: ask them again
		} else {
			res, stale, err := n.try(owner, kind, identity, msg, timeout)
			if err == nil {
				return res, nil
			}
			if !errors.Is(err, errRetry) {
				return nil, fmt.Errorf("cluster: request %s/%s: %w", kind, identity, err)
			}
			if errors.Is(err, errUnreachable) || errors.Is(err, errLost) {
				skip = append(skip, owner)
			}
			if stale {
				continue // a remembered activation had passivated: ask its owner at once
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cluster: request %s/%s after %d tries: %w", kind, identity, attempt, ErrUnavailable)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// try sends msg to the activation of (kind, identity) on owner, the one
// remembered or the one owner's placement actor answers. An error wrapping
// errRetry is worth another try; stale reports that a remembered
// activation was gone (passivated), so the next try can follow at once.
func (n *Node) try(owner, kind, identity string, msg any, timeout time.Duration) (res any, stale bool, err error) {
	pid := n.pids.get(kind, identity, owner)
	cached := pid != nil
	if !cached {
		if pid, err = n.activate(owner, kind, identity, min(n.cfg.LookupTimeout, timeout)); err != nil {
			return nil, false, fmt.Errorf("%w: %w", errRetry, err)
		}
		n.pids.put(kind, identity, pid)
	}
	res, err = n.await(n.System.Root.RequestFuture(pid, msg, timeout), pid.Address)
	if err == nil {
		if _, dead := res.(*actor.DeadLetterResponse); !dead {
			return res, false, nil
		}
		err = actor.ErrDeadLetter
	}
	n.pids.drop(kind, identity, pid)
	if !errors.Is(err, actor.ErrTimeout) && !errors.Is(err, actor.ErrDeadLetter) && !errors.Is(err, errLost) {
		return nil, false, err
	}
	return nil, cached && errors.Is(err, actor.ErrDeadLetter), fmt.Errorf("%w: %w", errRetry, err)
}

var (
	// errRetry marks an error of one try that another try may not have.
	errRetry = errors.New("retry")
	// errUnreachable: the owner did not answer an activation request in time.
	errUnreachable = errors.New("member unreachable")
	// errLost: the connection to the member closed while a request waited.
	errLost = errors.New("connection to member lost")
)

// activate asks the owner's disthash placement actor for the activation of
// (kind, identity), as the library's lookup does, but within timeout
// rather than its fixed 5 s.
func (n *Node) activate(owner, kind, identity string, timeout time.Duration) (*actor.PID, error) {
	req := &cluster.ActivationRequest{ClusterIdentity: cluster.NewClusterIdentity(identity, kind)}
	res, err := n.await(n.System.Root.RequestFuture(actor.NewPID(owner, disthash.PartitionActivatorActorName), req, timeout), owner)
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return nil, fmt.Errorf("activate %s/%s on %s: %w", kind, identity, owner, errUnreachable)
	case err != nil:
		return nil, fmt.Errorf("activate %s/%s on %s: %w", kind, identity, owner, err)
	}
	if r, ok := res.(*cluster.ActivationResponse); ok && r.Pid != nil {
		return r.Pid, nil
	}
	return nil, fmt.Errorf("activate %s/%s on %s: answered %T: %w", kind, identity, owner, res, actor.ErrDeadLetter)
}

// await is f's result, or errLost as soon as the connection to the member
// at addr closes: a dead member's requests would otherwise wait out their
// whole timeout. A local request needs no watch.
func (n *Node) await(f *actor.Future, addr string) (any, error) {
	if addr == n.System.Address() {
		return f.Result()
	}
	lost := n.router.lostSignal(addr)
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := f.Result()
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-lost:
		return nil, errLost
	}
}

// Member is one node of the cluster as the admin page shows it.
type Member struct {
	ID      string   `json:"id"`
	Address string   `json:"address"`
	Kinds   []string `json:"kinds"`
	Status  string   `json:"status"`
}

// Members lists the cluster's current members, by id.
func (n *Node) Members() []Member {
	var out []Member
	for _, m := range n.Cluster.MemberList.Members().Members() {
		kinds := slices.Sorted(slices.Values(m.Kinds))
		out = append(out, Member{ID: m.Id, Address: m.Address(), Kinds: kinds, Status: "alive"})
	}
	// The member list is a map underneath: sort so that the admin page and
	// its API do not reorder between reads.
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ID is this member's id.
func (n *Node) ID() string { return n.System.ID }

// View is this member's view of the membership: the members it routes to
// and the ids it has blocked (cluster/eviction says why that matters), all
// as actor system ids, without the "<cluster>@" some providers prefix.
func (n *Node) View() eviction.View {
	v := eviction.View{ID: n.System.ID}
	for _, id := range n.Cluster.GetBlockedMembers().ToSlice() {
		v.Blocked = append(v.Blocked, gossipKey(id))
	}
	for _, m := range n.Cluster.MemberList.Members().Members() {
		v.Members = append(v.Members, gossipKey(m.Id))
	}
	return v
}

// Stop leaves the cluster gracefully: every local grain receives Stopped
// (where it flushes and snapshots) and the others take over its identities.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		close(n.stopWatch)
		<-n.watchDone
		n.Cluster.Shutdown(true)
	})
}

// IsMember reports whether the node has joined (for /readyz).
func (n *Node) IsMember() bool {
	for _, m := range n.Cluster.MemberList.Members().Members() {
		if m.Id == n.System.ID || strings.HasSuffix(m.Address(), n.Address()) {
			return true
		}
	}
	return false
}

// atLeast drops records below a level before they reach the handler.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(attrs []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(attrs), h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{h.Handler.WithGroup(name), h.min}
}

// automanagedAddrs places this node's automanaged membership endpoint and
// its peers'. Without an explicit port it listens next to remoting (the
// node address's port + 1) and reads each seed as another node's address,
// so that nodes are named one way everywhere (SWITCHBOARD_SEEDS lists the
// others' SWITCHBOARD_NODE_ADDR). The library learns membership from the
// seeds alone, this node included: a node missing from its own list never
// counts itself a member.
func automanagedAddrs(host string, nodePort, port int, seeds []string) (int, []string, error) {
	shift := 0 // from a seed's port to its membership endpoint's
	if port == 0 {
		if nodePort == 0 {
			return 0, nil, errors.New("cluster: automanaged needs SWITCHBOARD_NODE_ADDR with its port (the others reach this node there) or SWITCHBOARD_AUTOMANAGED_PORT")
		}
		port, shift = nodePort+1, 1
	}
	out := []string{net.JoinHostPort(host, strconv.Itoa(port))}
	for _, seed := range seeds {
		h, p, err := net.SplitHostPort(seed)
		if err != nil {
			return 0, nil, fmt.Errorf("cluster: seed %q is not host:port: %w", seed, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n+shift > 65535 {
			return 0, nil, fmt.Errorf("cluster: seed %q: bad port", seed)
		}
		if a := net.JoinHostPort(h, strconv.Itoa(n+shift)); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return port, out, nil
}

// advertisedHost is the host other members dial this node at: host itself,
// or, when host is unspecified (0.0.0.0, ::, empty), the machine's first
// global address (IPv4 first), loopback when it has none.
func advertisedHost(host string) string {
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	addrs, _ := net.InterfaceAddrs()
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	return cmp.Or(v6, "127.0.0.1")
}
