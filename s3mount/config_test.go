package s3mount

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when valid, else a word of the message
	}{
		{"http://127.0.0.1:9000", ""},
		{"https://storage.example.net", ""},
		{"http://[::1]:9000/", ""},
		{"http://minio-1.local:9000", ""},
		{"", "empty"},
		{"127.0.0.1:9000", "http://"},
		{"ftp://127.0.0.1:9000", "http://"},
		{"HTTP://127.0.0.1:9000", "http://"},
		{"http://", "no host"},
		{"http:foo", "http://"},
		{"http://user:pw@127.0.0.1:9000", "user information"},
		{"http://127.0.0.1:9000/bucket", "path"},
		{"http://127.0.0.1:9000?x=1", "query"},
		{"http://127.0.0.1:9000#frag", "fragment"},
		{"http://127.0.0.1:99999", "port"},
		{"http://127.0.0.1:0", "port"},
		{"http://127.0.0.1:", "empty port"},
		{"http://bad_host:9000", "host"},
		{"http://-bad.example:9000", "host"},
		{"http:// spaced", "not a URL"},
	} {
		u, err := validateEndpoint(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("validateEndpoint(%q) = %v, want ok", tc.in, err)
		case tc.want == "" && u.Path != "":
			t.Errorf("validateEndpoint(%q) kept path %q", tc.in, u.Path)
		case tc.want != "" && err == nil:
			t.Errorf("validateEndpoint(%q) = ok, want an error about %s", tc.in, tc.want)
		case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("validateEndpoint(%q) = %v, want ErrInvalid mentioning %q", tc.in, err, tc.want)
		}
	}
	// A password put in the URL by mistake is not echoed back.
	if _, err := validateEndpoint("http://k:s3cr3t@h:1"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("userinfo: %v", err)
	}
}

func TestParseEndpoints(t *testing.T) {
	for _, tc := range []struct {
		in    string
		hosts string // the hosts in order when valid
		want  string // "" when valid, else a word of the message
	}{
		{"http://127.0.0.1:9000", "127.0.0.1:9000", ""},
		{"http://127.0.0.1:9000,http://127.0.0.1:9001", "127.0.0.1:9000 127.0.0.1:9001", ""},
		{"http://a:1, http://b:2 ,http://c:3", "a:1 b:2 c:3", ""},
		{"http://a:1,", "", "empty"},
		{"http://a:1,,http://b:2", "", "empty"},
		{"http://a:1,https://b:2", "", "same scheme"},
		{"http://a:1,http://a:1/", "", "twice"},
		{"http://a:1,ftp://b:2", "", "http://"},
	} {
		us, err := ParseEndpoints(tc.in)
		if tc.want != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseEndpoints(%q) = %v, want ErrInvalid mentioning %q", tc.in, err, tc.want)
			}
			continue
		}
		var hosts []string
		for _, u := range us {
			hosts = append(hosts, u.Host)
		}
		if err != nil || strings.Join(hosts, " ") != tc.hosts {
			t.Errorf("ParseEndpoints(%q) = %v, %v; want %s", tc.in, hosts, err, tc.hosts)
		}
	}
}

func TestValidateBucketName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"abc", ""},
		{"my-bucket.2024", ""},
		{strings.Repeat("a", 63), ""},
		{"ab", "3 to 63"},
		{strings.Repeat("a", 64), "3 to 63"},
		{"", "3 to 63"},
		{"My-Bucket", "only lowercase"},
		{"my_bucket", "only lowercase"},
		{"bucket/x", "only lowercase"},
		{"-bucket", "begin and end"},
		{"bucket-", "begin and end"},
		{".bucket", "begin and end"},
		{"my..bucket", `".."`},
		{"my.-bucket", `".-"`},
		{"my-.bucket", `"-."`},
		{"192.168.5.4", "IP address"},
		{"xn--bucket", `"xn--"`},
		{"sthree-bucket", `"sthree-"`},
		{"bucket-s3alias", `"-s3alias"`},
		{"bucket--ol-s3", `"--ol-s3"`},
		{"bucket.mrap", `".mrap"`},
	} {
		err := ValidateBucketName(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidateBucketName(%q) = %v, want ok", tc.in, err)
		case tc.want != "" && err == nil:
			t.Errorf("ValidateBucketName(%q) = ok, want an error about %s", tc.in, tc.want)
		case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ValidateBucketName(%q) = %v, want ErrInvalid mentioning %s", tc.in, err, tc.want)
		}
	}
}
