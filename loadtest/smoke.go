package loadtest

import (
	"context"
	"io"
	"time"
)

// SmokeConfig is the few-second, low-rate scenario of Smoke: enough
// traffic to exercise every path (messages, calls, replies, re-sends,
// search samples, two subscribers per inbox) and produce every figure, too
// little to say anything about speed.
func SmokeConfig(baseURL, adminToken string) Config {
	cfg := DefaultConfig()
	cfg.URL = baseURL
	cfg.AdminToken = adminToken
	cfg.Accounts = 1
	cfg.Inboxes = 2
	cfg.Contacts = 10
	cfg.Agents = 2
	cfg.Rate = 50
	cfg.Duration = 2 * time.Second
	cfg.Warmup = 500 * time.Millisecond
	cfg.Workers = 16
	cfg.CallShare = 0.15
	cfg.ReplyShare = 0.15
	cfg.ResendShare = 0.05
	cfg.SearchSample = 0.2
	cfg.SearchTimeout = 20 * time.Second
	cfg.Grace = 5 * time.Second
	cfg.MaxErrors = 0
	return cfg
}

// Smoke runs SmokeConfig against a running server. An error means the run
// could not be carried out; judge the report with Validate (figures and
// correctness counters) or Check (also no failed request).
func Smoke(ctx context.Context, baseURL, adminToken string) (*Report, error) {
	return Run(ctx, SmokeConfig(baseURL, adminToken), io.Discard)
}
