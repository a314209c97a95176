package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"
	"unicode/utf8"
)

// ErrForbiddenDestination: a webhook URL resolves to an address the server
// must not call (loopback, private, link-local, ...): otherwise any account
// could make the server probe its own network (SSRF).
var ErrForbiddenDestination = errors.New("webhooks: destination is a loopback, private or link-local address")

// forbidden reports whether ip is off limits for webhook deliveries.
func forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() || cgnat.Contains(ip)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ValidateURL checks a webhook URL: absolute http(s), at most 2,048
// characters, and (unless allowPrivate) a host that resolves only to public
// addresses. Resolution here is a courtesy (a clear 400 at creation); the
// dialer checks again at connect time, where it counts.
func ValidateURL(ctx context.Context, raw string, allowPrivate bool) error {
	if utf8.RuneCountInString(raw) > 2048 {
		return errors.New("url must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errors.New("url must be an absolute http or https URL without credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if forbidden(ip) {
			return ErrForbiddenDestination
		}
		return nil
	}
	if host == "localhost" {
		return ErrForbiddenDestination
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return fmt.Errorf("url host %q does not resolve", host)
	}
	for _, a := range addrs {
		if forbidden(a) {
			return ErrForbiddenDestination
		}
	}
	return nil
}

// Dialer returns the dialer deliveries connect with. Unless allowPrivate,
// its Control refuses forbidden addresses after DNS resolution, on the very
// address being connected to, so a name that resolved to a public address
// at creation and to 127.0.0.1 now (DNS rebinding) is still refused.
func Dialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if allowPrivate {
		return d
	}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhooks: dial %s: %w", address, err)
		}
		if forbidden(ap.Addr()) {
			return fmt.Errorf("webhooks: dial %s: %w", address, ErrForbiddenDestination)
		}
		return nil
	}
	return d
}
