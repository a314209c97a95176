package server

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/gateway"
)

// Config is the whole configuration of a node: every setting comes from a
// SWITCHBOARD_* variable, and a flag of the same name (lower case, dashes)
// overrides it.
type Config struct {
	HTTPAddr        string
	DatabaseURL     string
	AdminToken      string
	Search          string // postgres or typesense
	TypesenseURL    string
	TypesenseAPIKey string
	ClusterProvider string
	ClusterName     string
	NodeAddr        string
	Seeds           []string
	AutomanagedPort int
	EtcdEndpoints   []string
	// ClusterTLS names the PEM files of mutual TLS between members; all
	// three or none (server/cluster_tls.go).
	ClusterTLS cluster.TLSFiles
	// ClusterInsecure lets automanaged and etcd members talk without TLS.
	ClusterInsecure bool
	// ClusterSuspectAfter: another member that leaves this node's pings
	// unanswered this long is routed around until it answers.
	ClusterSuspectAfter time.Duration
	AllowedOrigins      []string
	IdleTimeout         time.Duration
	SnapshotEvery       int
	// InboxClosedKept is how many closed conversations an inbox keeps in
	// memory; lists page past them into the read model.
	InboxClosedKept int
	CommitWindow    time.Duration
	CommitMaxBatch  int
	Committers      int
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long a graceful stop answers every request with
	// Connection: close (and /readyz 503) before it closes idle
	// connections; 0 skips it.
	ShutdownDrain time.Duration
	LogLevel      string
	// WS tunes websocket sessions (two of its limits have variables).
	WS gateway.WSConfig
	// SecretKey seals webhook secrets at rest (base64 of 32 bytes).
	SecretKey string
	// WebhookAllowPrivate lets webhooks call loopback and private addresses.
	WebhookAllowPrivate bool
	// Webhooks tunes the deliverer (tests shorten its waits).
	Webhooks webhooks.Config
	// Limits per credential: SWITCHBOARD_RATE_AGENT, SWITCHBOARD_RATE_KEY,
	// SWITCHBOARD_WS_MAX_PER_CREDENTIAL.
	Limits gateway.Limits
	// HTTPTimeouts bound slow clients (headers, body, idle keep-alive); zero
	// values take the defaults of docs/api.md, tests shorten them.
	HTTPTimeouts gateway.Timeouts
	// GatewayCacheSize bounds the gateway's inbox and conversation lookup
	// caches (entries each).
	GatewayCacheSize int
	// GCPercent and MemoryLimitMB tune the garbage collector of the serving
	// process (cmd/switchboard, runtime.go); Go's GOGC and GOMEMLIMIT, when
	// set, take precedence. MemoryLimitMB 0 takes half the memory of the
	// machine or container.
	GCPercent     int
	MemoryLimitMB int

	// ClusterAgent, set by tests, makes nodes of one process one cluster.
	ClusterAgent *test.InMemAgent
}

type setting struct {
	name, help, def string
	set             func(string) error
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	list := func(p *[]string) func(string) error {
		return func(v string) error {
			*p = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					*p = append(*p, s)
				}
			}
			return nil
		}
	}
	num := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			*p = n
			return nil
		}
	}
	rate := func(p *float64) func(string) error {
		return func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0) || math.IsInf(f, 1) { // NaN fails >= 0
				return fmt.Errorf("not a rate per second ≥ 0: %q", v)
			}
			*p = f
			return nil
		}
	}
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (like 10m or 500ms): %q", v)
			}
			*p = d
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not true or false: %q", v)
			}
			*p = b
			return nil
		}
	}
	return []setting{
		{"HTTP_ADDR", "where REST, websocket, metrics and pages listen", "127.0.0.1:8080", str(&c.HTTPAddr)},
		{"DATABASE_URL", "PostgreSQL connection string (required)", "", str(&c.DatabaseURL)},
		{"ADMIN_TOKEN", "the admin token for /v1/admin/* and /admin/", "", str(&c.AdminToken)},
		{"SEARCH", "search backend: postgres (embedded) or typesense", "postgres", str(&c.Search)},
		{"TYPESENSE_URL", "the Typesense server", "", str(&c.TypesenseURL)},
		{"TYPESENSE_API_KEY", "the Typesense API key", "", str(&c.TypesenseAPIKey)},
		{"CLUSTER_PROVIDER", "single, automanaged or etcd", "single", str(&c.ClusterProvider)},
		{"CLUSTER_NAME", "nodes with the same name form one cluster", "switchboard", str(&c.ClusterName)},
		{"NODE_ADDR", "host:port actor remoting listens on", "127.0.0.1:0", str(&c.NodeAddr)},
		{"SEEDS", "automanaged: the other nodes' addresses (their NODE_ADDR), comma separated", "", list(&c.Seeds)},
		{"AUTOMANAGED_PORT", "automanaged: the port this node's membership endpoint listens on; 0 takes NODE_ADDR's port + 1 (and the seeds' ports + 1 for theirs); set it, and SEEDS name the others' membership endpoints", "0", num(&c.AutomanagedPort)},
		{"ETCD_ENDPOINTS", "etcd: endpoints, comma separated", "", list(&c.EtcdEndpoints)},
		{"CLUSTER_CA", "PEM file of the CA that signs every member's certificate (mutual TLS between nodes)", "", str(&c.ClusterTLS.CA)},
		{"NODE_CERT", "PEM file of this node's certificate, signed by the cluster CA for the host of NODE_ADDR", "", str(&c.ClusterTLS.Cert)},
		{"NODE_KEY", "PEM file of this node's private key", "", str(&c.ClusterTLS.Key)},
		{"CLUSTER_INSECURE", "let automanaged and etcd members talk without TLS (anyone reaching a node can then send any actor message); without it and without certificate files, members use mutual TLS from a CA the database keeps", "false", boolean(&c.ClusterInsecure)},
		{"CLUSTER_SUSPECT_AFTER", "route around another member silent to this node's pings this long, until it answers (a frozen member closes no connection)", "2s", dur(&c.ClusterSuspectAfter)},
		{"ALLOWED_ORIGINS", "websocket origins allowed besides the page's own, comma separated host patterns", "", list(&c.AllowedOrigins)},
		{"IDLE_TIMEOUT", "passivate a conversation actor idle this long", "10m", dur(&c.IdleTimeout)},
		{"SNAPSHOT_EVERY", "snapshot a conversation every N events", "100", num(&c.SnapshotEvery)},
		{"INBOX_CLOSED_KEPT", "closed conversations an inbox keeps in memory, the most recently active (lists page past them into the read model)", "5000", num(&c.InboxClosedKept)},
		{"COMMIT_WINDOW", "group commit: hold an append this long for company even when no commit runs (0: batch only while one runs)", "0s", dur(&c.CommitWindow)},
		{"COMMIT_MAX_BATCH", "group commit: most appends in one transaction", "512", num(&c.CommitMaxBatch)},
		{"COMMITTERS", "group commit: most batch transactions in flight at once", "2", num(&c.Committers)},
		{"SHUTDOWN_TIMEOUT", "graceful stop: longest wait for in-flight requests", "30s", dur(&c.ShutdownTimeout)},
		{"SHUTDOWN_DRAIN", "graceful stop: answer every request with Connection: close, and /readyz with 503, this long before closing idle connections, so that clients move theirs elsewhere first", "1s", dur(&c.ShutdownDrain)},
		{"LOG_LEVEL", "debug, info, warn or error", "info", str(&c.LogLevel)},
		{"WS_MAX_CONNECTIONS", "websocket connections one node accepts (more get 503)", "20000", num(&c.WS.MaxConnections)},
		{"SECRET_KEY", "key sealing webhook secrets at rest: base64 of 32 bytes (openssl rand -base64 32); unset, a key the database keeps", "", str(&c.SecretKey)},
		{"WEBHOOK_ALLOW_PRIVATE", "allow webhook destinations on loopback, private and link-local addresses", "false", boolean(&c.WebhookAllowPrivate)},
		{"WS_MAX_SUBSCRIPTIONS", "inbox subscriptions (and watches) per websocket connection", "50", num(&c.WS.MaxSubscriptions)},
		{"RATE_AGENT", "requests/s per agent token, bursts of twice that; also its websocket frames/s, bursts of one second's worth (0 = none)", "20", rate(&c.Limits.AgentRate)},
		{"RATE_KEY", "requests/s per account API key (0 = none)", "10000", rate(&c.Limits.KeyRate)},
		{"WS_MAX_PER_CREDENTIAL", "websockets one credential holds open on a node (more get 429)", "20", num(&c.Limits.WSPerCredential)},
		{"WEBHOOK_RETENTION", "keep delivered webhook deliveries this long after delivery, then delete them", "24h", dur(&c.Webhooks.Retention)},
		{"WEBHOOK_FAILED_RETENTION", "keep failed webhook deliveries (listed, retryable) this long after they failed", "720h", dur(&c.Webhooks.FailedRetention)},
		{"GC_PERCENT", "garbage collection: heap growth between collections, in percent of the live heap (Go's GOGC wins when set)", "400", num(&c.GCPercent)},
		{"MEMORY_LIMIT_MB", "garbage collection: soft memory limit in MiB; 0 takes half the machine's or container's memory (Go's GOMEMLIMIT wins when set)", "0", num(&c.MemoryLimitMB)},
		{"GATEWAY_CACHE_SIZE", "inboxes and conversations (each) whose account and inbox the gateway keeps in memory", strconv.Itoa(gateway.DefaultCacheSize), num(&c.GatewayCacheSize)},
	}
}

// LoadConfig reads defaults, then the environment, then flags.
func LoadConfig(name string, args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	for _, s := range c.settings() {
		if err := s.set(s.def); err != nil {
			return c, err
		}
		if v := getenv("SWITCHBOARD_" + s.name); v != "" {
			if err := s.set(v); err != nil {
				return c, fmt.Errorf("SWITCHBOARD_%s: %w", s.name, err)
			}
		}
		fs.Func(strings.ToLower(strings.ReplaceAll(s.name, "_", "-")), s.help+" (SWITCHBOARD_"+s.name+")", s.set)
		// The contract's "flags of the same names": the variable's own name
		// works as a flag too.
		fs.Func("SWITCHBOARD_"+s.name, "same as -"+strings.ToLower(strings.ReplaceAll(s.name, "_", "-")), s.set)
	}
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: settings are flags (-name=value) or SWITCHBOARD_* variables", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("SWITCHBOARD_DATABASE_URL is required"))
	}
	switch c.Search {
	case "postgres":
	case "typesense":
		if u, err := url.Parse(c.TypesenseURL); c.TypesenseURL == "" {
			errs = append(errs, errors.New("SWITCHBOARD_SEARCH=typesense needs SWITCHBOARD_TYPESENSE_URL"))
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_TYPESENSE_URL must be an http or https URL, not %q", c.TypesenseURL))
		}
	default:
		errs = append(errs, fmt.Errorf("SWITCHBOARD_SEARCH must be postgres or typesense, not %q", c.Search))
	}
	switch c.ClusterProvider {
	case "single", "automanaged", "etcd":
	default:
		errs = append(errs, fmt.Errorf("SWITCHBOARD_CLUSTER_PROVIDER must be single, automanaged or etcd, not %q", c.ClusterProvider))
	}
	if c.ClusterProvider == "automanaged" {
		for _, seed := range c.Seeds {
			if !validHostPort(seed) {
				errs = append(errs, fmt.Errorf("SWITCHBOARD_SEEDS: %q is not host:port", seed))
			}
		}
	}
	if c.ClusterProvider == "etcd" {
		if len(c.EtcdEndpoints) == 0 {
			errs = append(errs, errors.New("SWITCHBOARD_CLUSTER_PROVIDER=etcd needs SWITCHBOARD_ETCD_ENDPOINTS"))
		}
		for _, ep := range c.EtcdEndpoints {
			if !validEtcdEndpoint(ep) {
				errs = append(errs, fmt.Errorf("SWITCHBOARD_ETCD_ENDPOINTS: %q is not host:port or an http(s)://host:port URL", ep))
			}
		}
	}
	if err := c.validateClusterTLS(); err != nil {
		errs = append(errs, err)
	}
	if _, err := webhooks.NewSealer(c.SecretKey); err != nil {
		errs = append(errs, err)
	}
	if c.Limits.WSPerCredential < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_WS_MAX_PER_CREDENTIAL must be at least 1"))
	}
	if c.SnapshotEvery < 1 || c.CommitMaxBatch < 1 || c.Committers < 1 || c.InboxClosedKept < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_SNAPSHOT_EVERY, SWITCHBOARD_COMMIT_MAX_BATCH, SWITCHBOARD_COMMITTERS and SWITCHBOARD_INBOX_CLOSED_KEPT must be at least 1"))
	}
	if c.Webhooks.Retention <= 0 || c.Webhooks.FailedRetention <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_WEBHOOK_RETENTION and SWITCHBOARD_WEBHOOK_FAILED_RETENTION must be positive"))
	}
	if c.GCPercent < 1 || c.MemoryLimitMB < 0 {
		errs = append(errs, errors.New("SWITCHBOARD_GC_PERCENT must be at least 1 and SWITCHBOARD_MEMORY_LIMIT_MB at least 0"))
	}
	if c.ClusterSuspectAfter < 100*time.Millisecond {
		errs = append(errs, errors.New("SWITCHBOARD_CLUSTER_SUSPECT_AFTER must be at least 100ms"))
	}
	if c.GatewayCacheSize < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_GATEWAY_CACHE_SIZE must be at least 1"))
	}
	return errors.Join(errs...)
}

// validHostPort reports whether s is host:port with a host and a port
// from 1 to 65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	return err == nil && host != "" && perr == nil && n >= 1 && n <= 65535
}

// validEtcdEndpoint reports whether s is an endpoint the etcd client
// dials: host:port, or an http or https URL of one (nothing after it).
func validEtcdEndpoint(s string) bool {
	if !strings.Contains(s, "://") {
		return validHostPort(s)
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && validHostPort(u.Host) &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil
}
