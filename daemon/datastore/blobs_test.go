package datastore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseS3Spec(t *testing.T) {
	const secret = "s3cr3t-Value"
	tests := []struct {
		spec string
		want s3Spec // zero: an error is expected
	}{
		{"s3://key:" + secret + "@127.0.0.1:9000/bucket", s3Spec{[]string{"127.0.0.1:9000"}, "bucket", "key", secret, ""}},
		{"s3://key:" + secret + "@minio.local:9000/my.bucket/a/b/", s3Spec{[]string{"minio.local:9000"}, "my.bucket", "key", secret, "a/b/"}},
		{"s3://key:" + secret + "%2F%40x@[::1]:9000/bkt/p", s3Spec{[]string{"[::1]:9000"}, "bkt", "key", secret + "/@x", "p/"}},
		{"s3://key:" + secret + "@x:y@127.0.0.1:9000/bucket", s3Spec{[]string{"127.0.0.1:9000"}, "bucket", "key", secret + "@x:y", ""}},
		{"s3://key:" + secret + "@127.0.0.1:9000,127.0.0.1:9001/bucket", s3Spec{[]string{"127.0.0.1:9000", "127.0.0.1:9001"}, "bucket", "key", secret, ""}},
		{"s3://key:" + secret + "@127.0.0.1:9000,/bucket", s3Spec{}},
		{"s3://127.0.0.1:9000/bucket", s3Spec{}},
		{"s3://key@127.0.0.1:9000/bucket", s3Spec{}},
		{"s3://:" + secret + "@127.0.0.1:9000/bucket", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1/bucket", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:0/bucket", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000/", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000/Bucket", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000/b", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000/bucket/../x", s3Spec{}},
		{"s3://key:" + secret + "@127.0.0.1:9000/bucket?x=1", s3Spec{}},
		{"s3://key:" + secret + "%zz@127.0.0.1:9000/bucket", s3Spec{}},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.spec, secret, "SECRET"), func(t *testing.T) {
			got, err := parseS3Spec(tc.spec)
			if tc.want.endpoints == nil {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("err = %v, want ErrInvalidSpec", err)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("= %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseBlobStore(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"", "gs://bucket/x", "http://127.0.0.1:9000/bucket"} {
		if _, err := ParseBlobStore(ctx, spec); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseBlobStore(%q) = %v, want ErrInvalidSpec", spec, err)
		}
	}

	dir := filepath.Join(t.TempDir(), "blobs")
	b, err := ParseBlobStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	roundTripBlob(t, b)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("local blob dir not created: %v", err)
	}

	srv := minioServer(t)
	host := strings.TrimPrefix(srv.Endpoint, "http://")
	b, err = ParseBlobStore(ctx, "s3://"+srv.AccessKey+":"+srv.SecretKey+"@"+host+"/parsed-bucket/some/prefix")
	if err != nil {
		t.Fatal(err)
	}
	roundTripBlob(t, b)
	_, err = ParseBlobStore(ctx, "s3://"+srv.AccessKey+":wrong-s3cr3t@"+host+"/parsed-bucket")
	if err == nil || strings.Contains(err.Error(), "wrong-s3cr3t") {
		t.Errorf("bad secret: err = %v; want an error without the secret", err)
	}
}

// roundTripBlob checks Put, Get, idempotent Put and ErrMissing, then that
// List shows every blob (of every generation) and Delete removes one.
func roundTripBlob(t *testing.T, b Blobs) {
	t.Helper()
	ctx := context.Background()
	data := []byte("some chunk")
	h := hashHex(sum(data))
	for range 2 {
		if err := b.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := b.Get(ctx, h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := b.Get(ctx, hashHex(sum([]byte("other")))); !errors.Is(err, ErrMissing) {
		t.Fatalf("Get of an absent blob: %v, want ErrMissing", err)
	}
	if err := b.Put(ctx, "../../etc/passwd", data); err == nil {
		t.Fatal("Put accepted a hash that is a path")
	}

	later := BlobKey(h, 3)
	if err := b.Put(ctx, later, data[:4]); err != nil {
		t.Fatal(err)
	}
	sw := b.(Sweeper)
	list := func() map[string]int64 {
		t.Helper()
		got := map[string]int64{}
		if err := sw.List(ctx, func(bi BlobInfo) error {
			if time.Since(bi.Modified) > time.Hour || time.Until(bi.Modified) > time.Minute {
				t.Errorf("blob %s modified at %v", bi.Key, bi.Modified)
			}
			got[bi.Key] = bi.Size
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := list(), map[string]int64{h: int64(len(data)), later: 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for range 2 { // deleting what is not there is no error
		if err := sw.Delete(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Get(ctx, h); !errors.Is(err, ErrMissing) {
		t.Fatalf("Get after Delete: %v, want ErrMissing", err)
	}
	if got, want := list(), map[string]int64{later: 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List after Delete = %v, want %v", got, want)
	}
	if err := sw.Delete(ctx, "../"+h); err == nil {
		t.Fatal("Delete accepted a key that is a path")
	}
}

func TestParseBlobKey(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		key  string
		hash string
		gen  uint64
		ok   bool
	}{
		{h, h, 0, true},
		{h + "-1", h, 1, true},
		{h + "-18446744073709551615", h, 1<<64 - 1, true},
		{h + "-0", "", 0, false},
		{h + "-01", "", 0, false},
		{h + "-", "", 0, false},
		{h + "-x", "", 0, false},
		{h + "-18446744073709551616", "", 0, false},
		{strings.ToUpper(h), "", 0, false},
		{h[:63], "", 0, false},
		{".tmp-" + h[:8] + "-123", "", 0, false},
	}
	for _, tt := range tests {
		hash, gen, ok := ParseBlobKey(tt.key)
		if hash != tt.hash || gen != tt.gen || ok != tt.ok {
			t.Errorf("ParseBlobKey(%q) = %q, %d, %v; want %q, %d, %v", tt.key, hash, gen, ok, tt.hash, tt.gen, tt.ok)
		}
		if ok && BlobKey(hash, gen) != tt.key {
			t.Errorf("BlobKey(%q, %d) = %q, want %q back", hash, gen, BlobKey(hash, gen), tt.key)
		}
	}
}
