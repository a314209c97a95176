package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Config is one load scenario. DefaultConfig gives the values the flags
// default to; Run validates it before touching the server.
type Config struct {
	URL        string // server base URL, e.g. http://127.0.0.1:8080
	AdminToken string

	Accounts int // accounts created for the run
	Inboxes  int // inboxes per account
	Contacts int // contacts (so conversations) per inbox
	Agents   int // websocket subscribers per inbox, one agent each

	Rate       float64 // scheduled sends per second, open loop
	CallShare  float64 // fraction of sends that are a call (ringing, then completed)
	ReplyShare float64 // fraction of sends that are an agent reply
	// ResendShare is the fraction of inbound messages and replies sent a
	// second time with the same external_id / client_id, to check that the
	// server deduplicates them.
	ResendShare float64

	Duration time.Duration // measured window
	Warmup   time.Duration // sent but not measured, before the window
	Workers  int           // concurrent senders
	Seed     uint64        // drives the workload mix, so runs are repeatable

	SearchSample    float64       // fraction of inbound messages whose index lag is measured
	SearchTimeout   time.Duration // a sample not searchable by then counts as lost
	PauseIndexerFor time.Duration // pause the indexer this long at the start of the window

	CompareSQL      bool
	DatabaseURL     string
	CompareInterval time.Duration // time between first-page comparisons

	Grace          time.Duration // after the last ack, how long updates may still arrive
	RequestTimeout time.Duration // per HTTP attempt

	MaxAckP99       time.Duration // 0: no threshold
	MaxFreshnessP99 time.Duration // 0: no threshold
	MaxErrors       int64         // failed operations tolerated; negative: any number

	JSONPath string // where Main writes the JSON report; "-" is stdout

	// Timeline is the interval of the report's timeline (ack and freshness
	// per interval of due time); 0 leaves it out.
	Timeline time.Duration

	// ProfilePath, if set, receives the node's CPU profile over the
	// measured window (GET /debug/pprof/profile, admin token).
	ProfilePath string
}

// DefaultConfig returns the scenario the flags describe when none is given
// (URL and admin token aside, which have no sensible default).
func DefaultConfig() Config {
	return Config{
		Accounts:        1,
		Inboxes:         2,
		Contacts:        20,
		Agents:          2,
		Rate:            100,
		CallShare:       0.1,
		ReplyShare:      0.1,
		ResendShare:     0.01,
		Duration:        10 * time.Second,
		Warmup:          2 * time.Second,
		Workers:         64,
		Seed:            1,
		SearchSample:    0.01,
		SearchTimeout:   30 * time.Second,
		CompareInterval: 50 * time.Millisecond,
		Grace:           5 * time.Second,
		RequestTimeout:  10 * time.Second,
		Timeline:        time.Second,
	}
}

// Limits that keep a typo from turning into a denial of service on the
// tool's own machine (every subscriber is a goroutine and a socket).
const (
	maxInboxesTotal     = 10_000
	maxSubscribersTotal = 20_000
	maxContacts         = 1_000_000
	maxRate             = 1_000_000
	maxWorkers          = 100_000
	// maxTimeline bounds the timeline's intervals: each holds two small
	// histograms (~40 KB once it has samples).
	maxTimeline = 3_600
)

// Validate reports the first problem with the scenario, naming the flag.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("--url is required (e.g. http://127.0.0.1:8080)")
	case err != nil:
		return fmt.Errorf("--url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("--url must be http:// or https:// (got %q)", c.URL)
	case u.Host == "":
		return fmt.Errorf("--url has no host (got %q)", c.URL)
	case c.AdminToken == "":
		return errors.New("--admin-token is required (or set SWITCHBOARD_ADMIN_TOKEN)")
	case c.Accounts < 1:
		return fmt.Errorf("--accounts must be at least 1 (got %d)", c.Accounts)
	case c.Inboxes < 1:
		return fmt.Errorf("--inboxes must be at least 1 (got %d)", c.Inboxes)
	case c.Accounts*c.Inboxes > maxInboxesTotal:
		return fmt.Errorf("--accounts × --inboxes must be at most %d (got %d)", maxInboxesTotal, c.Accounts*c.Inboxes)
	case c.Contacts < 1 || c.Contacts > maxContacts:
		return fmt.Errorf("--contacts must be between 1 and %d (got %d)", maxContacts, c.Contacts)
	case c.Agents < 0:
		return fmt.Errorf("--agents must not be negative (got %d)", c.Agents)
	case c.Accounts*c.Inboxes*c.Agents > maxSubscribersTotal:
		return fmt.Errorf("--accounts × --inboxes × --agents must be at most %d (got %d)", maxSubscribersTotal, c.Accounts*c.Inboxes*c.Agents)
	case !(c.Rate > 0) || c.Rate > maxRate:
		return fmt.Errorf("--rate must be > 0 and at most %d (got %g)", maxRate, c.Rate)
	case !isFraction(c.CallShare):
		return fmt.Errorf("--call-share must be between 0 and 1 (got %g)", c.CallShare)
	case !isFraction(c.ReplyShare):
		return fmt.Errorf("--reply-share must be between 0 and 1 (got %g)", c.ReplyShare)
	case c.CallShare+c.ReplyShare > 1:
		return fmt.Errorf("--call-share + --reply-share must be at most 1 (got %g)", c.CallShare+c.ReplyShare)
	case !isFraction(c.ResendShare):
		return fmt.Errorf("--resend-share must be between 0 and 1 (got %g)", c.ResendShare)
	case c.Duration <= 0:
		return fmt.Errorf("--duration must be > 0 (got %s)", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative (got %s)", c.Warmup)
	case c.Workers < 1 || c.Workers > maxWorkers:
		return fmt.Errorf("--workers must be between 1 and %d (got %d)", maxWorkers, c.Workers)
	case !isFraction(c.SearchSample):
		return fmt.Errorf("--search-sample must be between 0 and 1 (got %g)", c.SearchSample)
	case c.SearchSample > 0 && c.SearchTimeout <= 0:
		return fmt.Errorf("--search-timeout must be > 0 (got %s)", c.SearchTimeout)
	case c.PauseIndexerFor < 0:
		return fmt.Errorf("--pause-indexer-for must not be negative (got %s)", c.PauseIndexerFor)
	case c.PauseIndexerFor >= c.Duration:
		// Index lag outside the pause is the baseline the paused figure is
		// compared with, so the window must be longer than the pause.
		return fmt.Errorf("--pause-indexer-for (%s) must be shorter than --duration (%s)", c.PauseIndexerFor, c.Duration)
	case c.PauseIndexerFor > 0 && c.SearchSample == 0:
		return errors.New("--pause-indexer-for needs --search-sample > 0: index lag is what the pause shows")
	case c.CompareSQL && c.DatabaseURL == "":
		return errors.New("--compare-sql needs --database-url (or SWITCHBOARD_DATABASE_URL)")
	case c.CompareSQL && c.CompareInterval <= 0:
		return fmt.Errorf("--compare-interval must be > 0 (got %s)", c.CompareInterval)
	case c.Timeline < 0:
		return fmt.Errorf("--timeline must not be negative (got %s; 0 turns it off)", c.Timeline)
	case c.Timeline > 0 && c.Duration/c.Timeline >= maxTimeline:
		return fmt.Errorf("--timeline %s cuts --duration %s into more than %d intervals: take a longer interval, or 0 for none", c.Timeline, c.Duration, maxTimeline)
	case c.Grace < 0:
		return fmt.Errorf("--grace must not be negative (got %s)", c.Grace)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("--request-timeout must be > 0 (got %s)", c.RequestTimeout)
	case c.MaxAckP99 < 0:
		return fmt.Errorf("--max-ack-p99 must not be negative (got %s)", c.MaxAckP99)
	case c.MaxFreshnessP99 < 0:
		return fmt.Errorf("--max-freshness-p99 must not be negative (got %s)", c.MaxFreshnessP99)
	case c.MaxFreshnessP99 > 0 && c.Agents == 0:
		return errors.New("--max-freshness-p99 needs --agents > 0: freshness is measured at subscribers")
	}
	return nil
}

func isFraction(f float64) bool { return f >= 0 && f <= 1 }

// usageError marks a problem with the command line (exit status 2) as
// opposed to a failed run (exit status 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseArgs turns the command line into a validated Config. getenv is
// injected so tests do not depend on the process environment.
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("switchboard loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: switchboard loadtest --url URL [flags]\n\n"+
			"Drives a running Switchboard server through its public API and measures\n"+
			"ack latency, freshness, index lag and correctness. Exit status: 0 pass,\n"+
			"1 a correctness counter is not zero, a threshold was missed or the run failed,\n"+
			"2 bad flags.\n\nflags:\n")
		fs.PrintDefaults()
	}

	fs.StringVar(&cfg.URL, "url", cfg.URL, "server base `URL`, e.g. http://127.0.0.1:8080")
	fs.StringVar(&cfg.AdminToken, "admin-token", getenv("SWITCHBOARD_ADMIN_TOKEN"), "admin `token` (default $SWITCHBOARD_ADMIN_TOKEN)")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "accounts to create")
	fs.IntVar(&cfg.Inboxes, "inboxes", cfg.Inboxes, "inboxes per account")
	fs.IntVar(&cfg.Contacts, "contacts", cfg.Contacts, "contacts (conversations) per inbox")
	fs.IntVar(&cfg.Agents, "agents", cfg.Agents, "websocket subscribers (agents) per inbox")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "scheduled sends per second (open loop)")
	fs.Float64Var(&cfg.CallShare, "call-share", cfg.CallShare, "fraction of sends that are calls (ringing then completed)")
	fs.Float64Var(&cfg.ReplyShare, "reply-share", cfg.ReplyShare, "fraction of sends that are agent replies")
	fs.Float64Var(&cfg.ResendShare, "resend-share", cfg.ResendShare, "fraction of messages re-sent with the same idempotency key")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured window")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before the measured window, not measured")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent senders")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the workload mix")
	fs.Float64Var(&cfg.SearchSample, "search-sample", cfg.SearchSample, "fraction of inbound messages whose index lag is measured")
	fs.DurationVar(&cfg.SearchTimeout, "search-timeout", cfg.SearchTimeout, "a sampled message not searchable by then is lost (plus the pause)")
	fs.DurationVar(&cfg.PauseIndexerFor, "pause-indexer-for", cfg.PauseIndexerFor, "pause the indexer this long at the start of the window")
	fs.BoolVar(&cfg.CompareSQL, "compare-sql", cfg.CompareSQL, "time the inbox first page via the API beside the equivalent SQL")
	fs.StringVar(&cfg.DatabaseURL, "database-url", getenv("SWITCHBOARD_DATABASE_URL"), "PostgreSQL `URL` for --compare-sql (default $SWITCHBOARD_DATABASE_URL)")
	fs.DurationVar(&cfg.CompareInterval, "compare-interval", cfg.CompareInterval, "pause between --compare-sql samples")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "how long updates may still arrive after the last ack")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "timeout of one HTTP attempt")
	fs.DurationVar(&cfg.MaxAckP99, "max-ack-p99", cfg.MaxAckP99, "fail when ack latency p99 is above this (0: off)")
	fs.DurationVar(&cfg.MaxFreshnessP99, "max-freshness-p99", cfg.MaxFreshnessP99, "fail when freshness p99 is above this (0: off)")
	fs.Int64Var(&cfg.MaxErrors, "max-errors", cfg.MaxErrors, "fail when more operations than this failed (negative: off)")
	fs.StringVar(&cfg.JSONPath, "json", cfg.JSONPath, "write every figure as JSON to `FILE` (- for stdout)")
	fs.DurationVar(&cfg.Timeline, "timeline", cfg.Timeline, "interval of the report's timeline: ack and freshness per interval of the window, to tell a stall from queueing (0: off)")
	fs.StringVar(&cfg.ProfilePath, "profile", cfg.ProfilePath, "write the node's CPU profile over the measured window to `FILE` (go tool pprof FILE)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		// The flag package has already printed the message and usage.
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("unexpected argument %q (all options are flags)", fs.Arg(0))}
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}
