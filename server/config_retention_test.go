package server

import (
	"strings"
	"testing"
	"time"
)

func TestWebhookRetentionConfig(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["SWITCHBOARD_DATABASE_URL"] = "postgres://localhost/x"
		return LoadConfig("test", nil, func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhooks.Retention != 24*time.Hour || c.Webhooks.FailedRetention != 30*24*time.Hour {
		t.Fatalf("defaults %v and %v, want 24h and 720h", c.Webhooks.Retention, c.Webhooks.FailedRetention)
	}
	c, err = load(map[string]string{"SWITCHBOARD_WEBHOOK_RETENTION": "2h", "SWITCHBOARD_WEBHOOK_FAILED_RETENTION": "48h"})
	if err != nil || c.Webhooks.Retention != 2*time.Hour || c.Webhooks.FailedRetention != 48*time.Hour {
		t.Fatalf("set: %v, %v, %v", c.Webhooks.Retention, c.Webhooks.FailedRetention, err)
	}
	for _, bad := range []string{"0s", "-1h", "a day"} {
		if _, err := load(map[string]string{"SWITCHBOARD_WEBHOOK_RETENTION": bad}); err == nil || !strings.Contains(err.Error(), "WEBHOOK_RETENTION") {
			t.Errorf("%q: err %v, want one naming SWITCHBOARD_WEBHOOK_RETENTION", bad, err)
		}
	}
}
