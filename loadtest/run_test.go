package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickConfig is a sub-second scenario against the fake server.
func quickConfig(s *fakeServer) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.AdminToken = s.URL, s.Admin
	cfg.Inboxes, cfg.Contacts, cfg.Agents = 2, 8, 2
	cfg.Rate = 200
	cfg.Warmup = 100 * time.Millisecond
	cfg.Duration = 800 * time.Millisecond
	cfg.Workers = 16
	cfg.CallShare, cfg.ReplyShare, cfg.ResendShare = 0.2, 0.2, 0.1
	cfg.SearchSample = 0.1
	cfg.SearchTimeout = 2 * time.Second
	cfg.Grace = 2 * time.Second
	return cfg
}

func runOK(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func TestRunCleanServer(t *testing.T) {
	s := newFakeServer(t, fakeFaults{})
	cfg := quickConfig(s)
	// Enough searched writes inside the pause that a slow (shared, -race)
	// machine still acknowledges some of them while the indexer is paused.
	cfg.PauseIndexerFor = 500 * time.Millisecond
	cfg.SearchSample = 0.5
	cfg.MaxAckP99 = time.Minute
	cfg.MaxFreshnessP99 = time.Minute
	rep := runOK(t, cfg)
	if err := rep.Check(); err != nil {
		t.Fatalf("clean run fails:\n%v", err)
	}
	if rep.Throughput.Messages == 0 || rep.Throughput.CallEvents == 0 || rep.Throughput.Replies == 0 || rep.Throughput.Resends == 0 {
		t.Errorf("mix not exercised: %+v", rep.Throughput)
	}
	// Every write is seen by both subscribers of its inbox.
	if got, want := rep.Latency.Freshness.Count, 2*countMeasuredWrites(rep); got < want/2 {
		t.Errorf("freshness samples = %d, want about %d", got, want)
	}
	if p := rep.IndexerPause; p == nil || p.PausedS <= 0 || p.IndexLagP99MS < 100 {
		t.Errorf("indexer pause figures = %+v, want index lag over 100ms after a 500ms pause", p)
	}
	if rep.Counters.Redelivered != 0 || rep.Counters.Unverified != 0 {
		t.Errorf("counters = %+v", rep.Counters)
	}
	// Every acknowledged write has both figures; the one from the send
	// leaves out the wait for a worker, never adds to it.
	ack, fromSend := rep.Latency.Ack, rep.Latency.AckFromSend
	if fromSend.Count != ack.Count || fromSend.MinMS > ack.MinMS || fromSend.MaxMS > ack.MaxMS || fromSend.P50MS > ack.P50MS {
		t.Errorf("ack from send %+v against ack %+v", fromSend, ack)
	}
	// The fake server has no /metrics, so the node's CPU is not measured,
	// but the tool's own is.
	var summary strings.Builder
	if err := rep.WriteSummary(&summary); err != nil {
		t.Fatal(err)
	}
	if n := rep.NodeCPU; n == nil || n.ToolCPUSeconds <= 0 || n.ToolUSPerWrite <= 0 || !strings.Contains(summary.String(), "tool cpu") {
		t.Errorf("tool CPU not reported: %+v", n)
	}
}

func countMeasuredWrites(rep *Report) int64 { return rep.Throughput.Acked }

// TestTimelineHoldsEveryMeasuredWrite: a call's hang-up is due when it is
// sent, after its first event was answered; for calls due late in the
// window that is past its end. They are measured with their call, and the
// timeline holds them too, so that its intervals add up to the run's
// figures.
func TestTimelineHoldsEveryMeasuredWrite(t *testing.T) {
	s := newFakeServer(t, fakeFaults{callAnswerDelay: 150 * time.Millisecond})
	cfg := quickConfig(s)
	cfg.CallShare, cfg.ReplyShare, cfg.ResendShare, cfg.SearchSample = 1, 0, 0, 0
	cfg.Timeline = 200 * time.Millisecond
	rep := runOK(t, cfg)
	var acks, fresh int64
	for _, iv := range rep.Timeline {
		acks += iv.Writes
		if iv.Freshness != nil {
			fresh += iv.Freshness.Count
		}
	}
	if rep.Throughput.CallEvents == 0 || acks != rep.Latency.Ack.Count || fresh != rep.Latency.Freshness.Count {
		t.Fatalf("timeline holds %d acks and %d freshness samples; the run measured %d and %d (%d call events)",
			acks, fresh, rep.Latency.Ack.Count, rep.Latency.Freshness.Count, rep.Throughput.CallEvents)
	}
}

func TestRunDetectsFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults fakeFaults
		tweak  func(*Config)
		check  func(Counters) bool
		want   string // in the Validate error; "" when the run must pass
	}{
		{
			name:   "idempotency ignored",
			faults: fakeFaults{ignoreIdempotency: true},
			tweak:  func(c *Config) { c.ResendShare = 0.3 },
			check:  func(c Counters) bool { return c.Duplicates > 0 },
			want:   "duplicates",
		},
		{
			name:   "older version after newer",
			faults: fakeFaults{staleOnce: true},
			check:  func(c Counters) bool { return c.Stale >= 1 && c.Gaps == 0 }, // once per subscriber, unless coalesced
			want:   "stale",
		},
		{
			name:   "seq skipped with nothing coalesced",
			faults: fakeFaults{skipSeqOnce: true},
			check:  func(c Counters) bool { return c.Gaps == 2 && c.Lost == 0 },
			want:   "gaps",
		},
		{
			name:   "a conversation's updates never sent",
			faults: fakeFaults{muteContact: "+15550000003"},
			tweak:  func(c *Config) { c.Grace = 200 * time.Millisecond },
			check:  func(c Counters) bool { return c.LostUpdates > 0 && c.Gaps > 0 },
			want:   "lost",
		},
		{
			name:   "never searchable",
			faults: fakeFaults{neverIndex: true},
			tweak:  func(c *Config) { c.SearchTimeout = 200 * time.Millisecond },
			check:  func(c Counters) bool { return c.LostSearch > 0 && c.LostUpdates == 0 },
			want:   "lost",
		},
		{
			name:   "slow connections coalesce legitimately",
			faults: fakeFaults{slowWriter: 30 * time.Millisecond},
			tweak:  func(c *Config) { c.Contacts = 2; c.Rate = 300 },
			check:  func(c Counters) bool { return c.Coalesced > 0 && c.Gaps == 0 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, tc.faults)
			cfg := quickConfig(s)
			if tc.tweak != nil {
				tc.tweak(&cfg)
			}
			rep := runOK(t, cfg)
			if !tc.check(rep.Counters) {
				t.Errorf("counters = %+v", rep.Counters)
			}
			err := rep.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "counter "+tc.want)):
				t.Errorf("Validate = %v, want it to name %q", err, tc.want)
			case tc.want != "" && rep.OK:
				t.Error("report OK despite a correctness failure")
			}
		})
	}
}

func TestRunPauseFailureIsReported(t *testing.T) {
	s := newFakeServer(t, fakeFaults{failPause: true})
	cfg := quickConfig(s)
	cfg.PauseIndexerFor = 200 * time.Millisecond
	rep := runOK(t, cfg)
	err := rep.Validate()
	if err == nil || !strings.Contains(err.Error(), "indexer pause failed") {
		t.Fatalf("Validate = %v, want the pause failure named", err)
	}
}

func TestRunSetupRefused(t *testing.T) {
	s := newFakeServer(t, fakeFaults{})
	cfg := quickConfig(s)
	cfg.AdminToken = "wrong"
	_, err := Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Run = %v, want a 401 setup error", err)
	}
}

func TestSmokeAgainstFake(t *testing.T) {
	s := newFakeServer(t, fakeFaults{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Smoke(ctx, s.URL, s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		t.Fatalf("smoke: %v", err)
	}
}

func TestMainEndToEnd(t *testing.T) {
	s := newFakeServer(t, fakeFaults{})
	path := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{
		"--url", s.URL, "--admin-token", s.Admin, "--rate", "100", "--duration", "1500ms", "--warmup", "0s",
		"--search-sample", "0.1", "--search-timeout", "2s", "--grace", "2s", "--json", path,
		"--max-ack-p99", "1m", "--max-freshness-p99", "1m",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "PASS") || !strings.Contains(stdout.String(), "freshness") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "rate") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if err := rep.Validate(); err != nil {
		t.Errorf("report from file: %v", err)
	}
}

func TestMainFailsOnMissedThreshold(t *testing.T) {
	s := newFakeServer(t, fakeFaults{})
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{
		"--url", s.URL, "--admin-token", s.Admin, "--rate", "50", "--duration", "500ms", "--warmup", "0s",
		"--search-sample", "0", "--max-ack-p99", "1ns",
	}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "max-ack-p99") {
		t.Errorf("summary does not name the threshold:\n%s", stdout.String())
	}
}
