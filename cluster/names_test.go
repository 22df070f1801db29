package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		rule string // a word the error must contain; "" means valid
	}{
		{"acme", ""},
		{"a", ""},
		{"cats-2", ""},
		{strings.Repeat("a", 63), ""},
		{"", "empty"},
		{strings.Repeat("a", 64), "limit is 63"},
		{"1abc", "start with a lowercase letter"},
		{"-abc", "start with a lowercase letter"},
		{"Acme", "start with a lowercase letter"},
		{"ac/me", `"/"`},
		{"..", "not a name"},
		{".", "not a name"},
		{"a..b", `'.'`},
		{"ac\x00me", "NUL"},
		{"ac\nme", "control character"},
		{"ac\x7fme", "control character"},
		{"ac me", `' '`},
		{"acmé", `'é'`},
		{"ac_me", `'_'`},
		{"a\xffb", "invalid UTF-8"},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if tt.rule == "" {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want ok", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.rule) {
			t.Errorf("ValidateName(%q) = %v, want an error naming %q", tt.name, err, tt.rule)
		}
		if !errors.Is(err, ErrInvalidName) || CodeOf(err) != CodeInvalid {
			t.Errorf("ValidateName(%q): error %v is not ErrInvalidName with code invalid", tt.name, err)
		}
	}
}

func TestValidateSecretName(t *testing.T) {
	tests := []struct {
		name string
		rule string
	}{
		{"API_TOKEN", ""},
		{"_private", ""},
		{"db2", ""},
		{"2db", "start with a letter or _"},
		{"API-TOKEN", `'-'`},
		{"a/b", `"/"`},
		{"", "empty"},
		{strings.Repeat("X", 64), "limit is 63"},
		{"A\x00", "NUL"},
	}
	for _, tt := range tests {
		err := ValidateSecretName(tt.name)
		if tt.rule == "" {
			if err != nil {
				t.Errorf("ValidateSecretName(%q) = %v, want ok", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.rule) {
			t.Errorf("ValidateSecretName(%q) = %v, want an error naming %q", tt.name, err, tt.rule)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want string // the canonical form, or the error's rule
		ok   bool
	}{
		{"org:acme", "org:acme", true},
		{"community:acme/cats", "community:acme/cats", true},
		{"project:acme/cats/p1", "project:acme/cats/p1", true},
		{"resource:acme/cats/p1/secrets/API_TOKEN", "resource:acme/cats/p1/secrets/API_TOKEN", true},
		{"resource:acme/cats/p1/datasets/images", "resource:acme/cats/p1/datasets/images", true},
		{"service-account:acme/mycloud/robots/alice", "service-account:acme/mycloud/robots/alice", true},
		{"acme", "is not KIND:PATH", false},
		{"planet:acme", "unknown kind", false},
		{"project:acme/cats", "has 3 parts", false},
		{"project:acme/cats/p1/", "has 3 parts", false},
		{"project:acme//p1", "empty", false},
		{"project:acme/../p1", "not a name", false},
		{"resource:acme/cats/p1/notebooks/x", "not a resource folder", false},
		{"resource:acme/cats/p1/secrets/bad-name", `'-'`, false},
		{"resource:acme/cats/p1/datasets/Bad", "lowercase", false},
	}
	for _, tt := range tests {
		r, err := ParseRef(tt.in)
		switch {
		case tt.ok && err != nil:
			t.Errorf("ParseRef(%q) = %v", tt.in, err)
		case tt.ok && r.String() != tt.want:
			t.Errorf("ParseRef(%q) = %s, want %s", tt.in, r, tt.want)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseRef(%q) = %v, want an error naming %q", tt.in, err, tt.want)
		case !tt.ok && CodeOf(err) != CodeInvalid:
			t.Errorf("ParseRef(%q): code %s, want invalid", tt.in, CodeOf(err))
		}
	}
}

// FuzzParseRef: parsing never panics, and whatever it accepts prints back to
// itself and holds only valid names.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"org:acme", "project:a/b/c", "resource:a/b/c/secrets/X", "resource:a/b/c/s3/x", "x:", ":", "project:a/../c", "folder:a/b/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if CodeOf(err) != CodeInvalid {
				t.Fatalf("ParseRef(%q): error %v has code %s", s, err, CodeOf(err))
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q) printed back as %q", s, r)
		}
		for _, seg := range r.Path {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\x00") {
				t.Fatalf("ParseRef(%q) accepted segment %q", s, seg)
			}
		}
	})
}
