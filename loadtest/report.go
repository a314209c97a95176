package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is every figure of a run. Its JSON form (WriteJSON) is what
// scripts and docs/BENCHMARKS.md are built from; durations are in
// milliseconds (fields ending _ms) or seconds (_s).
type Report struct {
	Tool         string        `json:"tool"`
	RunID        string        `json:"run_id"`
	Date         time.Time     `json:"date"` // when the run started, UTC
	Machine      Machine       `json:"machine"`
	Scenario     Scenario      `json:"scenario"`
	ElapsedS     float64       `json:"elapsed_s"`  // from setup to the end of the grace period
	MeasuredS    float64       `json:"measured_s"` // the measured window
	Throughput   Throughput    `json:"throughput"`
	Latency      Latencies     `json:"latency_ms"`
	IndexerPause *IndexerPause `json:"indexer_pause"` // null unless --pause-indexer-for
	CompareSQL   *CompareSQL   `json:"compare_sql"`   // null unless --compare-sql
	NodeCPU      *NodeCPU      `json:"node_cpu"`
	// Timeline: ack and freshness per interval of the window (--timeline);
	// null when off.
	Timeline    []TimelineInterval `json:"timeline"`
	TimelineS   float64            `json:"timeline_interval_s"`
	Counters    Counters           `json:"counters"`
	Errors      map[string]int64   `json:"errors_by_kind"`
	FirstErrors map[string]string  `json:"first_errors"` // the first message of each kind
	Thresholds  []Threshold        `json:"thresholds"`
	Failures    []string           `json:"failures"` // why the run fails; empty when OK
	OK          bool               `json:"ok"`
}

type Machine struct {
	Hostname  string `json:"hostname"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"num_cpu"`
	GoVersion string `json:"go_version"`
}

// Scenario is the Config as run, without secrets.
type Scenario struct {
	URL              string  `json:"url"`
	Accounts         int     `json:"accounts"`
	InboxesPerAcct   int     `json:"inboxes_per_account"`
	ContactsPerInbox int     `json:"contacts_per_inbox"`
	AgentsPerInbox   int     `json:"agents_per_inbox"`
	Rate             float64 `json:"rate"`
	CallShare        float64 `json:"call_share"`
	ReplyShare       float64 `json:"reply_share"`
	ResendShare      float64 `json:"resend_share"`
	DurationS        float64 `json:"duration_s"`
	WarmupS          float64 `json:"warmup_s"`
	Workers          int     `json:"workers"`
	Seed             uint64  `json:"seed"`
	SearchSample     float64 `json:"search_sample"`
	SearchTimeoutS   float64 `json:"search_timeout_s"`
	PauseIndexerForS float64 `json:"pause_indexer_for_s"`
	CompareSQL       bool    `json:"compare_sql"`
	GraceS           float64 `json:"grace_s"`
	RequestTimeoutS  float64 `json:"request_timeout_s"`
	MaxAckP99MS      float64 `json:"max_ack_p99_ms"`
	MaxFreshP99MS    float64 `json:"max_freshness_p99_ms"`
	MaxErrors        int64   `json:"max_errors"`
}

type Throughput struct {
	TargetRate   float64 `json:"target_rate"`   // scheduled sends per second
	AchievedRate float64 `json:"achieved_rate"` // acknowledged sends due in the window, per second of window
	Scheduled    int64   `json:"scheduled"`     // sends due in the measured window
	Sent         int64   `json:"sent"`
	Acked        int64   `json:"acked"`
	NotSent      int64   `json:"not_sent"` // the tool fell too far behind schedule (whole run)
	Writes       int64   `json:"writes"`   // acknowledged writes, whole run: messages + call events + replies
	Messages     int64   `json:"messages"`
	CallEvents   int64   `json:"call_events"`
	Replies      int64   `json:"replies"`
	Resends      int64   `json:"resends"`
	SearchSample int64   `json:"search_samples"`
	Inboxes      int     `json:"inboxes"`
	Subscribers  int     `json:"subscribers"`
	Updates      int64   `json:"updates_received"`
}

// Latencies: ack is due time → HTTP answer; ack from send is a worker
// starting the send → HTTP answer, ack without the tool's own lateness
// (schedule lag: too few --workers, a busy tool, or Go's timers, which wake
// up to 1 ms late in an idle process); freshness is due time → each
// subscriber holding that version (one sample per write and subscriber);
// index lag is ack → found by /v1/search; schedule lag is due time → a
// worker starting the send.
type Latencies struct {
	Ack                 *Latency `json:"ack"`
	AckFromSend         *Latency `json:"ack_from_send"`
	Freshness           *Latency `json:"freshness"`
	FreshnessWhilePause *Latency `json:"freshness_while_paused"`
	IndexLag            *Latency `json:"index_lag"` // samples acknowledged while the indexer ran
	IndexLagWhilePause  *Latency `json:"index_lag_while_paused"`
	ScheduleLag         *Latency `json:"schedule_lag"`
}

type IndexerPause struct {
	RequestedS float64 `json:"requested_s"`
	PausedS    float64 `json:"paused_s"`
	Error      string  `json:"error,omitempty"`
	// The incident that cannot happen here, side by side.
	IndexLagP99MS  float64 `json:"index_lag_while_paused_p99_ms"`
	FreshnessP99MS float64 `json:"freshness_while_paused_p99_ms"`
}

type CompareSQL struct {
	API      *Latency `json:"api"` // GET conversations?limit=50, then GET counts
	SQL      *Latency `json:"sql"` // the page query, then the counts query
	RatioP50 float64  `json:"ratio_p50"`
	RatioP99 float64  `json:"ratio_p99"` // SQL / API: above 1 the SQL-backed inbox is slower
}

// Counters: the first six are correctness counters and must be zero; see
// the package documentation for the exact definitions.
type Counters struct {
	Stale       int64 `json:"stale"`
	Lost        int64 `json:"lost"` // lost_updates + lost_search
	LostUpdates int64 `json:"lost_updates"`
	LostSearch  int64 `json:"lost_search"`
	Duplicates  int64 `json:"duplicates"`
	Gaps        int64 `json:"gaps"`

	Coalesced           int64 `json:"coalesced"`
	SeqJumps            int64 `json:"seq_jumps"`
	Resyncs             int64 `json:"resyncs"`
	Snapshots           int64 `json:"snapshots"`
	Redelivered         int64 `json:"redelivered"`
	Unverified          int64 `json:"unverified"`
	FreshnessUnmeasured int64 `json:"freshness_unmeasured"`
	Reconnects          int64 `json:"reconnects"`
	Retries             int64 `json:"retries"`
	// RetriesAnsweredDuplicate: retries of the tool's own answered 200 (an
	// earlier attempt was applied though its answer was never seen).
	RetriesAnsweredDuplicate int64 `json:"retries_answered_duplicate"`
	// SummaryAhead: answers to a new write whose summary was already past
	// the write's own version (the server answered an internal retry from
	// its replay).
	SummaryAhead  int64 `json:"summary_ahead"`
	Errors        int64 `json:"errors"`
	SearchSkipped int64 `json:"search_skipped"`
}

type Threshold struct {
	Name  string  `json:"name"`
	Limit float64 `json:"limit"`
	Value float64 `json:"value"` // -1 when the figure is missing
	Unit  string  `json:"unit"`
	OK    bool    `json:"ok"`
}

func (r *runner) report(startedAt, finished time.Time, c trackerCounts, cpu *NodeCPU) *Report {
	cfg := r.cfg
	host, _ := os.Hostname()
	measured := cfg.Duration.Seconds()
	kinds, first := r.errorKinds()
	rep := &Report{
		Tool:  "switchboard loadtest",
		RunID: r.runID,
		Date:  startedAt.UTC().Truncate(time.Second),
		Machine: Machine{
			Hostname: host, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
			NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		},
		Scenario: Scenario{
			URL: cfg.URL, Accounts: cfg.Accounts, InboxesPerAcct: cfg.Inboxes,
			ContactsPerInbox: cfg.Contacts, AgentsPerInbox: cfg.Agents,
			Rate: cfg.Rate, CallShare: cfg.CallShare, ReplyShare: cfg.ReplyShare, ResendShare: cfg.ResendShare,
			DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), Workers: cfg.Workers, Seed: cfg.Seed,
			SearchSample: cfg.SearchSample, SearchTimeoutS: cfg.SearchTimeout.Seconds(),
			PauseIndexerForS: cfg.PauseIndexerFor.Seconds(), CompareSQL: cfg.CompareSQL,
			GraceS: cfg.Grace.Seconds(), RequestTimeoutS: cfg.RequestTimeout.Seconds(),
			MaxAckP99MS: msOf(cfg.MaxAckP99), MaxFreshP99MS: msOf(cfg.MaxFreshnessP99), MaxErrors: cfg.MaxErrors,
		},
		ElapsedS:  roundMS(finished.Sub(startedAt).Seconds()),
		MeasuredS: measured,
		Throughput: Throughput{
			TargetRate:   cfg.Rate,
			AchievedRate: roundMS(float64(r.acked.Load()) / measured),
			Scheduled:    r.scheduled.Load(),
			Sent:         r.sent.Load(),
			Acked:        r.acked.Load(),
			NotSent:      r.skipped.Load(),
			Writes:       r.writes.Load(),
			Messages:     r.messages.Load(),
			CallEvents:   r.calls.Load(),
			Replies:      r.replies.Load(),
			Resends:      r.resends.Load(),
			SearchSample: r.searchSamples.Load(),
			Inboxes:      len(r.inboxes),
			Subscribers:  len(r.subs),
			Updates:      c.Updates,
		},
		Latency: Latencies{
			Ack:                 r.ack.Summary(),
			AckFromSend:         r.ackFromSend.Summary(),
			Freshness:           r.fresh.Summary(),
			FreshnessWhilePause: r.freshPaused.Summary(),
			IndexLag:            r.indexLag.Summary(),
			IndexLagWhilePause:  r.indexLagPaused.Summary(),
			ScheduleLag:         r.schedLag.Summary(),
		},
		Counters: Counters{
			Stale:                    c.Stale,
			LostUpdates:              c.LostUpdates,
			LostSearch:               r.searchLost.Load(),
			Duplicates:               c.Duplicates,
			Gaps:                     c.Gaps,
			Coalesced:                c.Coalesced,
			SeqJumps:                 c.SeqJumps,
			Resyncs:                  c.Resyncs,
			Snapshots:                c.Snapshots,
			Redelivered:              c.Redelivered,
			Unverified:               c.Unverified,
			FreshnessUnmeasured:      c.Unmeasured,
			Reconnects:               r.reconnects.Load(),
			Retries:                  r.retries.Load(),
			RetriesAnsweredDuplicate: r.retriedDuplicate.Load(),
			SummaryAhead:             r.summaryAhead.Load(),
			Errors:                   r.errorCount(),
			SearchSkipped:            r.searchSkipped.Load(),
		},
		Errors:      kinds,
		FirstErrors: first,
		NodeCPU:     cpu,
		Timeline:    r.timeline.intervalsOut(),
		TimelineS:   cfg.Timeline.Seconds(),
	}
	rep.Counters.Lost = rep.Counters.LostUpdates + rep.Counters.LostSearch

	if cfg.PauseIndexerFor > 0 {
		p := &IndexerPause{RequestedS: cfg.PauseIndexerFor.Seconds()}
		if since, until := r.pausedSince.Load(), r.resumedAt.Load(); since > 0 && until > since {
			p.PausedS = roundMS(time.Duration(until - since).Seconds())
		}
		if e := r.pauseErr.Load(); e != nil {
			p.Error = *e
		}
		if l := rep.Latency.IndexLagWhilePause; l != nil {
			p.IndexLagP99MS = l.P99MS
		}
		if l := rep.Latency.FreshnessWhilePause; l != nil {
			p.FreshnessP99MS = l.P99MS
		}
		rep.IndexerPause = p
	}
	if cfg.CompareSQL {
		cs := &CompareSQL{API: r.apiPage.Summary(), SQL: r.sqlPage.Summary()}
		if cs.API != nil && cs.SQL != nil {
			cs.RatioP50 = ratio(cs.SQL.P50MS, cs.API.P50MS)
			cs.RatioP99 = ratio(cs.SQL.P99MS, cs.API.P99MS)
		}
		rep.CompareSQL = cs
	}

	p99 := func(l *Latency) float64 {
		if l == nil {
			return -1
		}
		return l.P99MS
	}
	if cfg.MaxAckP99 > 0 {
		v := p99(rep.Latency.Ack)
		rep.Thresholds = append(rep.Thresholds, Threshold{Name: "max-ack-p99", Limit: msOf(cfg.MaxAckP99), Value: v, Unit: "ms", OK: v >= 0 && v <= msOf(cfg.MaxAckP99)})
	}
	if cfg.MaxFreshnessP99 > 0 {
		v := p99(rep.Latency.Freshness)
		rep.Thresholds = append(rep.Thresholds, Threshold{Name: "max-freshness-p99", Limit: msOf(cfg.MaxFreshnessP99), Value: v, Unit: "ms", OK: v >= 0 && v <= msOf(cfg.MaxFreshnessP99)})
	}
	if cfg.MaxErrors >= 0 {
		v := rep.Counters.Errors
		rep.Thresholds = append(rep.Thresholds, Threshold{Name: "max-errors", Limit: float64(cfg.MaxErrors), Value: float64(v), Unit: "count", OK: v <= cfg.MaxErrors})
	}
	rep.judge()
	return rep
}

func msOf(d time.Duration) float64 { return roundMS(float64(d) / float64(time.Millisecond)) }

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return roundMS(a / b)
}

// judge fills Failures and OK from Validate and the thresholds.
func (r *Report) judge() {
	r.Failures = nil
	if err := r.Validate(); err != nil {
		r.Failures = append(r.Failures, strings.Split(err.Error(), "\n")...)
	}
	for _, t := range r.Thresholds {
		if !t.OK {
			if t.Value < 0 {
				r.Failures = append(r.Failures, fmt.Sprintf("threshold --%s: figure missing", t.Name))
			} else {
				r.Failures = append(r.Failures, fmt.Sprintf("threshold --%s missed: %s %g > %g", t.Name, t.Unit, t.Value, t.Limit))
			}
		}
	}
	r.OK = len(r.Failures) == 0
}

// Validate returns an error naming every figure the scenario should have
// produced but did not, and every correctness counter that is not zero.
// It does not judge speed (see Check).
func (r *Report) Validate() error {
	var errs []error
	missing := func(name string) { errs = append(errs, fmt.Errorf("missing figure: %s", name)) }
	if r.Date.IsZero() {
		missing("date")
	}
	if r.Machine.Hostname == "" {
		missing("machine.hostname")
	}
	if r.Machine.GOOS == "" || r.Machine.GOARCH == "" {
		missing("machine.goos/goarch")
	}
	if r.Machine.NumCPU <= 0 {
		missing("machine.num_cpu")
	}
	if r.MeasuredS <= 0 {
		missing("measured_s")
	}
	if r.Throughput.AchievedRate <= 0 {
		missing("throughput.achieved_rate")
	}
	lat := func(name string, l *Latency) {
		if l == nil || l.Count == 0 {
			missing("latency_ms." + name)
		}
	}
	sc := r.Scenario
	lat("ack", r.Latency.Ack)
	lat("ack_from_send", r.Latency.AckFromSend)
	lat("schedule_lag", r.Latency.ScheduleLag)
	if sc.AgentsPerInbox > 0 {
		lat("freshness", r.Latency.Freshness)
	}
	if sc.SearchSample > 0 {
		lat("index_lag", r.Latency.IndexLag)
	}
	if sc.PauseIndexerForS > 0 {
		switch {
		case r.IndexerPause == nil:
			missing("indexer_pause")
		case r.IndexerPause.Error != "":
			errs = append(errs, fmt.Errorf("indexer pause failed: %s", r.IndexerPause.Error))
		}
		lat("index_lag_while_paused", r.Latency.IndexLagWhilePause)
		if sc.AgentsPerInbox > 0 {
			lat("freshness_while_paused", r.Latency.FreshnessWhilePause)
		}
	}
	if sc.CompareSQL {
		switch cs := r.CompareSQL; {
		case cs == nil:
			missing("compare_sql")
		default:
			if cs.API == nil || cs.API.Count == 0 {
				missing("compare_sql.api")
			}
			if cs.SQL == nil || cs.SQL.Count == 0 {
				missing("compare_sql.sql")
			}
			if cs.RatioP50 <= 0 || cs.RatioP99 <= 0 {
				missing("compare_sql.ratio_p50/ratio_p99")
			}
		}
	}
	if n := r.NodeCPU; n != nil && n.Profile != "" && n.Error != "" {
		// Asked for explicitly, so its absence fails the run.
		errs = append(errs, fmt.Errorf("--profile: %s", n.Error))
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"stale", r.Counters.Stale},
		{"lost", r.Counters.Lost},
		{"duplicates", r.Counters.Duplicates},
		{"gaps", r.Counters.Gaps},
	} {
		if c.v != 0 {
			errs = append(errs, fmt.Errorf("correctness counter %s = %d, want 0", c.name, c.v))
		}
	}
	return errors.Join(errs...)
}

// Check is Validate plus the --max-* thresholds: nil exactly when the run
// passes (exit status 0).
func (r *Report) Check() error {
	if r.OK {
		return nil
	}
	return errors.New(strings.Join(r.Failures, "\n"))
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// WriteSummary writes the human summary.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	sc, tp, c := r.Scenario, r.Throughput, r.Counters
	fmt.Fprintf(&b, "switchboard loadtest  run %s  %s  %s (%s/%s, %d CPUs, %s)\n",
		r.RunID, r.Date.Format(time.RFC3339), r.Machine.Hostname, r.Machine.GOOS, r.Machine.GOARCH, r.Machine.NumCPU, r.Machine.GoVersion)
	fmt.Fprintf(&b, "scenario    %s: %d account(s) × %d inbox(es) × %d contacts, %d agent(s) per inbox; %g sends/s for %gs after %gs warmup;\n"+
		"            calls %g%%, replies %g%%, re-sends %g%%, search sample %g%%, %d workers, seed %d\n",
		sc.URL, sc.Accounts, sc.InboxesPerAcct, sc.ContactsPerInbox, sc.AgentsPerInbox, sc.Rate, sc.DurationS, sc.WarmupS,
		100*sc.CallShare, 100*sc.ReplyShare, 100*sc.ResendShare, 100*sc.SearchSample, sc.Workers, sc.Seed)
	fmt.Fprintf(&b, "throughput  achieved %.1f/s of %g/s (%d of %d scheduled acknowledged, %d not sent); %d writes (%d messages, %d call events, %d replies), %d updates received by %d subscribers\n\n",
		tp.AchievedRate, tp.TargetRate, tp.Acked, tp.Scheduled, tp.NotSent, tp.Writes, tp.Messages, tp.CallEvents, tp.Replies, tp.Updates, tp.Subscribers)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tcount\tp50\tp90\tp99\tp99.9\tmax\t")
	row := func(name string, l *Latency) {
		if l == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t\n", name)
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, l.Count, l.P50MS, l.P90MS, l.P99MS, l.P999MS, l.MaxMS)
	}
	row("ack", r.Latency.Ack)
	row("ack from send", r.Latency.AckFromSend)
	row("freshness", r.Latency.Freshness)
	if sc.PauseIndexerForS > 0 {
		row("freshness, indexer paused", r.Latency.FreshnessWhilePause)
	}
	row("index lag", r.Latency.IndexLag)
	if sc.PauseIndexerForS > 0 {
		row("index lag, indexer paused", r.Latency.IndexLagWhilePause)
	}
	row("schedule lag", r.Latency.ScheduleLag)
	if cs := r.CompareSQL; cs != nil {
		row("first page, API", cs.API)
		row("first page, SQL", cs.SQL)
	}
	tw.Flush()
	b.WriteString("\n")

	if p := r.IndexerPause; p != nil {
		if p.Error != "" {
			fmt.Fprintf(&b, "indexer     pause failed: %s\n", p.Error)
		} else {
			fmt.Fprintf(&b, "indexer     paused %.1fs: index lag p99 %s while freshness p99 %s\n", p.PausedS, fmtMS(p.IndexLagP99MS), fmtMS(p.FreshnessP99MS))
		}
	}
	if n := r.NodeCPU; n != nil {
		if n.Error != "" {
			fmt.Fprintf(&b, "node cpu    not measured: %s\n", n.Error)
		}
		if n.Writes > 0 {
			fmt.Fprintf(&b, "node cpu    %.2f s over %.1f s (%.2f cores): %.0f µs per write (%d writes)\n", n.CPUSeconds, n.WindowS, n.Cores, n.USPerWrite, n.Writes)
		}
		if n.ToolUSPerWrite > 0 {
			fmt.Fprintf(&b, "tool cpu    %.2f s: %.0f µs per write (this load tool's own process)\n", n.ToolCPUSeconds, n.ToolUSPerWrite)
		}
		if n.Profile != "" && n.Error == "" {
			fmt.Fprintf(&b, "profile     %s (go tool pprof -top %s)\n", n.Profile, n.Profile)
		}
	}
	if line := r.timelineSummary(); line != "" {
		fmt.Fprintf(&b, "timeline    %s\n", line)
	}
	if cs := r.CompareSQL; cs != nil {
		fmt.Fprintf(&b, "compare     first page SQL/API: p50 ×%.2f, p99 ×%.2f\n", cs.RatioP50, cs.RatioP99)
	}
	fmt.Fprintf(&b, "correctness stale %d  lost %d (updates %d, search %d)  duplicates %d  gaps %d\n",
		c.Stale, c.Lost, c.LostUpdates, c.LostSearch, c.Duplicates, c.Gaps)
	fmt.Fprintf(&b, "stream      coalesced %d (in %d jumps)  resyncs %d  snapshots %d  redelivered %d  unverified %d  freshness unmeasured %d  reconnects %d\n",
		c.Coalesced, c.SeqJumps, c.Resyncs, c.Snapshots, c.Redelivered, c.Unverified, c.FreshnessUnmeasured, c.Reconnects)
	fmt.Fprintf(&b, "errors      %d failed operations, %d retried attempts, %d search samples skipped\n", c.Errors, c.Retries, c.SearchSkipped)
	fmt.Fprintf(&b, "replays     %d retries answered duplicate (earlier attempt applied, answer unseen)  %d answers with a later summary\n", c.RetriesAnsweredDuplicate, c.SummaryAhead)
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "            %s: %d (first: %s)\n", k, r.Errors[k], r.FirstErrors[k])
	}
	if l := r.Latency.ScheduleLag; l != nil && l.P99MS > 10 {
		fmt.Fprintf(&b, "warning     sends started up to %s late (p99): the tool was short of --workers and latencies include its queueing\n", fmtMS(l.P99MS))
	}
	for _, t := range r.Thresholds {
		verdict := "ok"
		if !t.OK {
			verdict = "MISSED"
		}
		fmt.Fprintf(&b, "threshold   --%s %g %s: %g %s\n", t.Name, t.Limit, t.Unit, t.Value, verdict)
	}
	if r.OK {
		b.WriteString("PASS\n")
	} else {
		b.WriteString("FAIL\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// timelineSummary says whether the tail is spread or gathered: the p99 of
// freshness (ack when no subscriber measured any) per interval, as the
// median and the worst interval, with when that was.
func (r *Report) timelineSummary() string {
	name, pick := "freshness", func(iv TimelineInterval) *Latency { return iv.Freshness }
	if r.Latency.Freshness == nil {
		name, pick = "ack", func(iv TimelineInterval) *Latency { return iv.Ack }
	}
	var p99s []float64
	worst := -1
	for i, iv := range r.Timeline {
		q := pick(iv)
		if q == nil {
			continue
		}
		p99s = append(p99s, q.P99MS)
		if worst < 0 || q.P99MS > pick(r.Timeline[worst]).P99MS {
			worst = i
		}
	}
	if worst < 0 {
		return ""
	}
	slices.Sort(p99s)
	w := r.Timeline[worst]
	return fmt.Sprintf("%s p99 per %gs interval: median %s, worst %s (max %s) at %.1fs of %d intervals",
		name, r.TimelineS, fmtMS(p99s[(len(p99s)-1)/2]), fmtMS(pick(w).P99MS), fmtMS(pick(w).MaxMS), w.AtS, len(p99s))
}
