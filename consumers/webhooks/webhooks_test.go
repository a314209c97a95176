package webhooks

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSignVerify(t *testing.T) {
	secret := NewSecret()
	body := []byte(`{"id":"evt_1"}`)
	ts := time.Now().Unix()
	sig, err := Sign(secret, "evt_1", ts, body)
	if err != nil || !strings.HasPrefix(sig, "v1,") {
		t.Fatalf("Sign: %q, %v", sig, err)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1,bogus "+sig)
	if err := Verify(secret, h, body, time.Now(), time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if Verify(secret, h, []byte(`{"id":"evt_2"}`), time.Now(), time.Minute) == nil {
		t.Error("a changed body must not verify")
	}
	if Verify(NewSecret(), h, body, time.Now(), time.Minute) == nil {
		t.Error("another secret must not verify")
	}
	if Verify(secret, h, body, time.Now().Add(time.Hour), time.Minute) == nil {
		t.Error("an old timestamp must not verify")
	}
}

// The Standard Webhooks specification's published example.
func TestSignMatchesSpecExample(t *testing.T) {
	sig, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`))
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
}

func TestSealer(t *testing.T) {
	s, err := NewSealer(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("wh_1", "whsec_abc")
	if err != nil || strings.Contains(string(sealed), "whsec_abc") {
		t.Fatalf("Seal: %v", err)
	}
	if got, err := s.Open("wh_1", sealed); err != nil || got != "whsec_abc" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("wh_2", sealed); err == nil {
		t.Error("a sealed secret must not open under another webhook id")
	}
	other, _ := NewSealer(NewKey())
	if _, err := other.Open("wh_1", sealed); err == nil {
		t.Error("another key must not open it")
	}
	if _, err := NewSealer("c2hvcnQ="); err == nil {
		t.Error("a short key must be refused")
	}
	var none *Sealer
	if _, err := none.Seal("wh_1", "x"); !errors.Is(err, ErrNoSecretKey) {
		t.Errorf("no key: %v", err)
	}
	// A new key with the earlier one behind it: what the earlier sealed
	// still opens, and new seals use the new key alone.
	earlierKey, newKey := NewKey(), NewKey()
	earlier, _ := NewSealer(earlierKey)
	old, _ := earlier.Seal("wh_1", "whsec_old")
	both, err := NewSealer(newKey, earlierKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open("wh_1", old); err != nil || got != "whsec_old" {
		t.Fatalf("sealed under the earlier key: %q, %v", got, err)
	}
	fresh, _ := both.Seal("wh_1", "whsec_new")
	if _, err := earlier.Open("wh_1", fresh); err == nil {
		t.Error("a new seal opened under the earlier key")
	}
	if newOnly, _ := NewSealer(newKey); func() bool { _, err := newOnly.Open("wh_1", fresh); return err != nil }() {
		t.Error("a new seal does not open under the new key")
	}
}

func TestValidateURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"http://127.0.0.1/x", "http://localhost:8080/", "http://10.0.0.1/", "http://192.168.1.1/",
		"http://172.16.0.1/", "http://169.254.169.254/", "http://[::1]/", "http://[fe80::1]/", "http://0.0.0.0/", "http://100.64.0.1/",
		"http://255.255.255.255/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a00:1]/", "http://[64:ff9b:1::a9fe:a9fe]/",
		"http://[2002:7f00:1::]/", "http://[2002:c0a8:101::1]/", "http://[::127.0.0.1]/", "http://[::10.0.0.1]/",
		"http://0.1.2.3/", "http://[fec0::1]/"} {
		if err := ValidateURL(ctx, u, false); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s: %v, want refused", u, err)
		}
		if err := ValidateURL(ctx, u, true); err != nil {
			t.Errorf("%s with private allowed: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://example.com/", "example.com/x", "http://user:pw@93.184.215.14/", "", "http://" + strings.Repeat("a", 2050),
		"http://93.184.215.14:99999/", "http://93.184.215.14:0/"} {
		if err := ValidateURL(ctx, u, true); err == nil {
			t.Errorf("%q must be refused", u)
		}
	}
	// inet_aton's shorthand forms, which curl and the C library read as
	// addresses, are judged as those addresses; a public one is refused
	// too, since deliveries (Go's resolver) would take it for a name.
	for _, u := range []string{"http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://017700000001/",
		"http://127.000.000.001/", "http://0/", "http://10.1/", "http://0xA9.0xFE.0xA9.0xFE/", "http://192.168.257/"} {
		if err := ValidateURL(ctx, u, false); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s: %v, want refused as a forbidden destination", u, err)
		}
	}
	for _, u := range []string{"http://1572395022/", "http://93.184.55054/"} {
		if err := ValidateURL(ctx, u, false); err == nil || errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s: %v, want refused as a shorthand", u, err)
		}
	}
	for h, want := range map[string]string{"127.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "010.0.0.1": "8.0.0.1", "1.2.3.4": "1.2.3.4", "4294967295": "255.255.255.255"} {
		if ip, ok := shorthandIPv4(h); !ok || ip.String() != want {
			t.Errorf("shorthandIPv4(%q) = %v %v, want %s", h, ip, ok, want)
		}
	}
	for _, h := range []string{"4294967296", "1.2.3.4.5", "1.256.1", "1.2.65536", "08", "0x", "1..2", "a.b", "example.com", "+1", "1.-2"} {
		if ip, ok := shorthandIPv4(h); ok {
			t.Errorf("shorthandIPv4(%q) = %v, want no address", h, ip)
		}
	}
	for _, u := range []string{"http://api.localhost/hook", "http://localhost./hook", "http://API.LocalHost.:8080/hook"} {
		if err := ValidateURL(ctx, u, false); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	// A name that does not resolve (.invalid never does, RFC 6761) is left
	// to the deliveries' retries and the dialer's check.
	for _, u := range []string{"https://93.184.215.14/hook", "http://[64:ff9b::5db8:d70e]/", "http://[2002:5db8:d70e::1]/", "https://hooks.example.invalid/in"} {
		if err := ValidateURL(ctx, u, false); err != nil {
			t.Errorf("%s, a public address: %v", u, err)
		}
	}
}

// The dialer refuses private addresses at connect time, whatever DNS said.
func TestDialerRefusesPrivateAtConnect(t *testing.T) {
	d := Dialer(false)
	_, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
	if !errors.Is(err, ErrForbiddenDestination) {
		t.Fatalf("dial loopback: %v", err)
	}
}

func TestRetryDelay(t *testing.T) {
	for n := 1; n <= 30; n++ {
		d := retryDelay(time.Second, 10*time.Minute, n)
		if n == 1 && d > 2*time.Second {
			t.Errorf("first retry after %v, want ≤ 2 s", d)
		}
		if d > 10*time.Minute || d <= 0 {
			t.Errorf("retry %d after %v", n, d)
		}
	}
}

// Retries go on for at least the horizon: a backoff step that would land
// past it becomes one last attempt at the horizon, and only a failure there
// or later is final.
func TestNextAttemptKeepsTheWholeHorizon(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const h = 24 * time.Hour
	cases := []struct {
		failedAt time.Duration // after the first attempt
		wait     time.Duration
		want     time.Duration // next attempt after the first; -1: failed
	}{
		{0, 2 * time.Second, 2 * time.Second},
		{h - 10*time.Minute, 10 * time.Minute, h},
		{h - 3*time.Minute, 10 * time.Minute, h},
		{h - time.Nanosecond, time.Minute, h},
		{h, time.Second, -1},
		{h + 5*time.Second, time.Second, -1},
	}
	for _, c := range cases {
		next, ok := nextAttempt(first.Add(c.failedAt), first, c.wait, h)
		switch {
		case c.want < 0 && ok:
			t.Errorf("failed at +%v: retried at +%v, want failed for good", c.failedAt, next.Sub(first))
		case c.want >= 0 && (!ok || !next.Equal(first.Add(c.want))):
			t.Errorf("failed at +%v, wait %v: next +%v (%v), want +%v", c.failedAt, c.wait, next.Sub(first), ok, c.want)
		}
	}
}

func TestCircuit(t *testing.T) {
	c := &circuit{}
	now := time.Now()
	if !c.allows(now, 3, true) || !c.allows(now, 3, false) {
		t.Fatal("a closed circuit allows")
	}
	c.failures, c.openUntil = 3, now.Add(time.Second)
	if c.allows(now, 3, true) || !c.open(now, 3) {
		t.Fatal("an open circuit refuses retries")
	}
	if !c.allows(now, 3, false) || c.probes(3, false) {
		t.Fatal("an open circuit lets a first attempt through, which probes nothing")
	}
	later := now.Add(2 * time.Second)
	if !c.allows(later, 3, true) || !c.probes(3, true) {
		t.Fatal("a cooled-down circuit allows a retry as its probe")
	}
	c.probing = true
	if c.allows(later, 3, true) {
		t.Fatal("only one probe at a time")
	}
}

// An attempt's error text is stored whole or cut between characters, as
// valid UTF-8 without NUL, whatever the URL or the receiver's answer held.
func TestErrorTextIsStorable(t *testing.T) {
	url := "http://127.0.0.1:1/a" + strings.Repeat("😀", 200)
	for _, raw := range []string{
		"POST " + url + ": answered 500",
		"answered 500 \xff\xfe bad bytes",
		"answered 500 with a \x00 in it",
		strings.Repeat("é", 400),
	} {
		for _, n := range []int{500, 21, 22, 23, 1} {
			got := errorText(errors.New(raw), n)
			if !utf8.ValidString(got) || strings.Contains(got, "\x00") || len(got) > n {
				t.Errorf("errorText(%q, %d) = %q: not storable or too long", raw[:min(len(raw), 30)], n, got)
			}
		}
	}
	if got := errorText(errors.New("short"), 500); got != "short" {
		t.Errorf("a short text changed: %q", got)
	}
}
