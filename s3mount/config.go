package s3mount

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is Config.Timeout when it is left zero.
const DefaultTimeout = 10 * time.Second

// Config says which bucket to open and how.
type Config struct {
	// Endpoint is http(s)://host[:port], or several such URLs separated
	// by commas: the nodes of one S3 service (a distributed MinIO), which
	// all serve the same buckets with the same keys. Requests go to the
	// first that answers; when it cannot be reached, to the next.
	Endpoint string
	Bucket   string
	KeyID    string
	Secret   string // never logged, never in error texts
	ReadOnly bool
	// Timeout bounds every S3 request: connecting, waiting for an answer,
	// and each stretch of a transfer without progress. A down or stalled
	// server turns into ErrUnavailable within it. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives a line for every ErrUnavailable; nil means
	// slog.Default().
	Logger *slog.Logger
}

// validateEndpoint checks that s is an S3 endpoint URL this package can
// use: scheme http or https, a host with an optional port, and no path,
// query, fragment or user information.
func validateEndpoint(s string) (*url.URL, error) {
	shown := s // what messages quote: never a password
	bad := func(rule string, args ...any) (*url.URL, error) {
		return nil, &Error{Kind: ErrInvalid,
			Reason: fmt.Sprintf("endpoint %q: ", shown) + fmt.Sprintf(rule, args...)}
	}
	if s == "" {
		return bad("empty; want http(s)://host:port")
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return bad("must start with http:// or https://, as in http://127.0.0.1:9000")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL (%v); want http(s)://host:port", err.(*url.Error).Err)
	}
	if u.User != nil {
		shown = u.Redacted()
	}
	switch {
	case u.Host == "":
		return bad("no host; want %s://host:port", u.Scheme)
	case u.User != nil:
		return bad("must not contain user information; credentials go in the key id and secret")
	case u.Path != "" && u.Path != "/":
		return bad("must not have a path (%q); the bucket is named separately", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return bad("must not have a query")
	case u.Fragment != "":
		return bad("must not have a fragment")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return bad("no host name")
	}
	if strings.HasSuffix(u.Host, ":") {
		return bad("empty port after ':'")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a number in 1..65535", port)
		}
	}
	if net.ParseIP(host) == nil {
		for _, label := range strings.Split(host, ".") {
			if !validHostLabel(label) {
				return bad("host %q is not a valid host name", host)
			}
		}
	}
	u.Path = ""
	return u, nil
}

// ParseEndpoints checks a Config.Endpoint: one endpoint URL, or several
// separated by commas, each valid for validateEndpoint, all with the same
// scheme and none twice.
func ParseEndpoints(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := validateEndpoint(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		for _, prev := range out {
			switch {
			case prev.Scheme != u.Scheme:
				return nil, &Error{Kind: ErrInvalid, Reason: fmt.Sprintf("endpoints %q and %q: all endpoints of a connector use the same scheme", prev, u)}
			case prev.Host == u.Host:
				return nil, &Error{Kind: ErrInvalid, Reason: fmt.Sprintf("endpoint %q is listed twice", u)}
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func validHostLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateBucketName checks s against S3's bucket naming rules for general
// purpose buckets, naming the rule that fails.
func ValidateBucketName(s string) error {
	bad := func(rule string, args ...any) error {
		return &Error{Kind: ErrInvalid,
			Reason: fmt.Sprintf("bucket name %q: ", s) + fmt.Sprintf(rule, args...)}
	}
	if len(s) < 3 || len(s) > 63 {
		return bad("must be 3 to 63 characters long, not %d", len(s))
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("character %q at %d: only lowercase letters, digits, dots and hyphens are allowed", c, i)
		}
	}
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return bad("must begin and end with a lowercase letter or digit")
	}
	for _, seq := range []string{"..", ".-", "-."} {
		if strings.Contains(s, seq) {
			return bad("must not contain %q", seq)
		}
	}
	if net.ParseIP(s) != nil {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(s, p) {
			return bad("must not start with %q (reserved)", p)
		}
	}
	for _, suf := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(s, suf) {
			return bad("must not end with %q (reserved)", suf)
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
