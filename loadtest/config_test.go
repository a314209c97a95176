package loadtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseArgsDefaultsAndEnv(t *testing.T) {
	cfg, err := parseArgs([]string{"--url", "http://127.0.0.1:8080/"},
		env(map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "tok", "SWITCHBOARD_DATABASE_URL": "postgres://x"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.URL, want.AdminToken, want.DatabaseURL = "http://127.0.0.1:8080", "tok", "postgres://x"
	if cfg != want {
		t.Errorf("cfg = %+v\nwant %+v", cfg, want)
	}
}

func TestParseArgsAll(t *testing.T) {
	cfg, err := parseArgs(strings.Fields(
		"--url https://h:1 --admin-token a --accounts 2 --inboxes 3 --contacts 40 --agents 5 --rate 1500.5 "+
			"--call-share 0.2 --reply-share 0.3 --resend-share 0.05 --duration 1m --warmup 5s --workers 9 --seed 7 "+
			"--search-sample 0.02 --search-timeout 9s --pause-indexer-for 20s --compare-sql --database-url postgres://db "+
			"--compare-interval 10ms --grace 3s --request-timeout 4s --max-ack-p99 15ms --max-freshness-p99 10ms "+
			"--max-errors -1 --json out.json --timeline 250ms"), env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		URL: "https://h:1", AdminToken: "a", Accounts: 2, Inboxes: 3, Contacts: 40, Agents: 5, Rate: 1500.5,
		CallShare: 0.2, ReplyShare: 0.3, ResendShare: 0.05, Duration: time.Minute, Warmup: 5 * time.Second,
		Workers: 9, Seed: 7, SearchSample: 0.02, SearchTimeout: 9 * time.Second, PauseIndexerFor: 20 * time.Second,
		CompareSQL: true, DatabaseURL: "postgres://db", CompareInterval: 10 * time.Millisecond, Grace: 3 * time.Second,
		RequestTimeout: 4 * time.Second, MaxAckP99: 15 * time.Millisecond, MaxFreshnessP99: 10 * time.Millisecond,
		MaxErrors: -1, JSONPath: "out.json", Timeline: 250 * time.Millisecond,
	}
	if cfg != want {
		t.Errorf("cfg = %+v\nwant %+v", cfg, want)
	}
}

func TestMainUsageErrors(t *testing.T) {
	base := "--url http://127.0.0.1:1 --admin-token a "
	for _, tc := range []struct {
		args string
		want string // in stderr
	}{
		{"--admin-token a", "--url is required"},
		{"--url ftp://x --admin-token a", "--url must be http"},
		{"--url http:// --admin-token a", "no host"},
		{"--url http://127.0.0.1:1", "--admin-token is required"},
		{base + "--rate 0", "--rate must be > 0"},
		{base + "--rate -5", "--rate must be > 0"},
		{base + "--rate NaN", "--rate must be > 0"},
		{base + "--rate fast", "invalid value \"fast\" for flag -rate"},
		{base + "--accounts 0", "--accounts must be at least 1"},
		{base + "--inboxes 0", "--inboxes must be at least 1"},
		{base + "--contacts 0", "--contacts must be between"},
		{base + "--agents -1", "--agents must not be negative"},
		{base + "--agents 1000 --inboxes 100", "at most 20000"},
		{base + "--call-share 1.5", "--call-share must be between 0 and 1"},
		{base + "--reply-share -0.1", "--reply-share must be between 0 and 1"},
		{base + "--call-share 0.6 --reply-share 0.6", "--call-share + --reply-share"},
		{base + "--resend-share 2", "--resend-share"},
		{base + "--duration 0s", "--duration must be > 0"},
		{base + "--duration ten", "invalid value \"ten\" for flag -duration"},
		{base + "--warmup -1s", "--warmup must not be negative"},
		{base + "--workers 0", "--workers must be between"},
		{base + "--search-sample 1.1", "--search-sample"},
		{base + "--pause-indexer-for 10s --duration 10s", "must be shorter than --duration"},
		{base + "--pause-indexer-for 1s --search-sample 0", "needs --search-sample"},
		{base + "--compare-sql", "--compare-sql needs --database-url"},
		{base + "--max-ack-p99 -1ms", "--max-ack-p99 must not be negative"},
		{base + "--max-freshness-p99 5ms --agents 0", "needs --agents"},
		{base + "--timeline -1s", "--timeline must not be negative"},
		{base + "--timeline 1ms --duration 1h", "more than 3600 intervals"},
		{base + "--no-such-flag", "flag provided but not defined: -no-such-flag"},
		{base + "extra", "unexpected argument \"extra\""},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), strings.Fields(tc.args), &stdout, &stderr)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr does not say %q:\n%s", tc.args, tc.want, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %s", tc.args, stdout.String())
		}
	}
}

func TestMainHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	for _, f := range []string{"-url", "-admin-token", "-accounts", "-inboxes", "-contacts", "-agents", "-rate",
		"-call-share", "-reply-share", "-duration", "-warmup", "-workers", "-json", "-max-ack-p99",
		"-max-freshness-p99", "-search-sample", "-pause-indexer-for", "-compare-sql", "-database-url"} {
		if !strings.Contains(stderr.String(), f+" ") {
			t.Errorf("usage lacks %s", f)
		}
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	_, err := Run(context.Background(), Config{}, nil)
	if err == nil || !strings.Contains(err.Error(), "--url is required") {
		t.Fatalf("Run(Config{}) = %v", err)
	}
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		t.Error("Run's error is not a usage error: Main has already validated")
	}
}
