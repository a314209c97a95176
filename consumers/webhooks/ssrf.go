package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/domain/validate"
)

// ErrForbiddenDestination: a webhook URL resolves to an address the server
// must not call (loopback, private, link-local, ...): otherwise any account
// could make the server probe its own network (SSRF).
var ErrForbiddenDestination = errors.New("webhooks: destination is a loopback, private or link-local address")

// forbidden reports whether ip is off limits for webhook deliveries. An
// IPv6 address that carries an IPv4 one (NAT64, 6to4) is judged by the IPv4
// address too: a gateway on the way would deliver to it.
func forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	if v4, ok := embeddedIPv4(ip); ok && forbidden(v4) {
		return true
	}
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() || cgnat.Contains(ip) || thisNetwork.Contains(ip) || siteLocal.Contains(ip) || ip == broadcast
}

var (
	cgnat = netip.MustParsePrefix("100.64.0.0/10")
	// 0.0.0.0/8 is "this network" (RFC 1122): Linux connects 0.x.y.z to
	// the host itself, as it does 0.0.0.0. fec0::/10, site-local, is
	// deprecated (RFC 3879) but still routed inside some networks.
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	siteLocal   = netip.MustParsePrefix("fec0::/10")
	broadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	nat64       = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052: the IPv4 address in the last 32 bits
	nat64Loc    = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215, the same layout at /96
	sixToFour   = netip.MustParsePrefix("2002::/16")      // RFC 3056: the IPv4 address in bits 16–47
	v4Compat    = netip.MustParsePrefix("::/96")          // RFC 4291's deprecated IPv4-compatible form
)

// embeddedIPv4 is the IPv4 address a NAT64 or 6to4 address carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip), nat64Loc.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case v4Compat.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	return netip.Addr{}, false
}

// ValidateURL checks a webhook URL: the API's rule for every URL
// (validate.URL), no credentials, a valid port, and (unless allowPrivate) a
// host that resolves only to public addresses. Resolution here is a courtesy (a clear 400 at creation); the
// dialer checks again at connect time, where it counts.
func ValidateURL(ctx context.Context, raw string, allowPrivate bool) error {
	if err := validate.URL("url", raw); err != nil {
		return err
	}
	u, err := url.Parse(raw) // validate.URL parsed it: no error here
	if err != nil || u.User != nil || !validPort(u.Port()) {
		return errors.New("url must be an absolute http or https URL without credentials")
	}
	if allowPrivate {
		return nil
	}
	// "localhost." is localhost: a name's trailing dot only says it is
	// fully qualified.
	host := strings.TrimSuffix(u.Hostname(), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if forbidden(ip) {
			return ErrForbiddenDestination
		}
		return nil
	}
	if ip, ok := shorthandIPv4(host); ok {
		// 127.1, 2130706433, 0x7f000001, 0: the C library reads these as
		// addresses, so curl and most tools would call 127.0.0.1 or 0.0.0.0.
		if forbidden(ip) {
			return ErrForbiddenDestination
		}
		return fmt.Errorf("url's host %q is an IPv4 address in a shorthand form; write it as four decimal numbers, %s", host, ip)
	}
	if host = strings.ToLower(host); host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return ErrForbiddenDestination // RFC 6761: loopback, whatever DNS says
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		// A name that does not resolve now (a record not yet published,
		// a DNS outage, a server with no outside DNS) is no reason to
		// refuse the webhook: its deliveries fail and are retried until it
		// does, and the dialer checks every address it connects to.
		return nil
	}
	for _, a := range addrs {
		if forbidden(a) {
			return ErrForbiddenDestination
		}
	}
	return nil
}

// shorthandIPv4 reads host as inet_aton(3) does: one to four numbers
// separated by dots, each decimal, octal (a leading 0) or hexadecimal (0x),
// the last one filling the bytes the others leave.
func shorthandIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			p, base = p[2:], 16
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil || p == "" || p[0] == '+' || p[0] == '-' {
			return netip.Addr{}, false
		}
		if last := i == len(parts)-1; last {
			if n >= 1<<(8*(4-i)) {
				return netip.Addr{}, false
			}
			v = v<<(8*(4-i)) | n
		} else {
			if n > 255 {
				return netip.Addr{}, false
			}
			v = v<<8 | n
		}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
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

// validPort: no port, or one from 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
