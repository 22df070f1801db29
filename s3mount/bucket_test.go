package s3mount

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestOpenErrors(t *testing.T) {
	s, _ := setup(t, nil)
	const secret = "s3cr3t-value"
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cfg    Config
		kind   error
		phrase string
	}{
		{"unknown key id", Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: "nobody", Secret: secret}, ErrBadCredentials, "does not know this key id"},
		{"wrong secret", Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: s.AccessKey, Secret: secret}, ErrBadCredentials, "secret is not"},
		{"missing bucket", Config{Endpoint: s.Endpoint, Bucket: "no-such-bucket", KeyID: s.AccessKey, Secret: s.SecretKey}, ErrNoSuchBucket, "does not exist"},
		{"unreachable", Config{Endpoint: "http://127.0.0.1:1", Bucket: testBucket, KeyID: s.AccessKey, Secret: secret}, ErrUnavailable, "connection refused"},
		{"bad endpoint", Config{Endpoint: "s3://127.0.0.1:1", Bucket: testBucket, KeyID: s.AccessKey, Secret: secret}, ErrInvalid, "http://"},
		{"bad bucket name", Config{Endpoint: s.Endpoint, Bucket: "Bad_Bucket", KeyID: s.AccessKey, Secret: secret}, ErrInvalid, "lowercase"},
		{"no key id", Config{Endpoint: s.Endpoint, Bucket: testBucket, Secret: secret}, ErrInvalid, "key id"},
		{"no secret", Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: s.AccessKey}, ErrInvalid, "secret"},
		{"negative timeout", Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: s.AccessKey, Secret: secret, Timeout: -time.Second}, ErrInvalid, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Open(ctx, tc.cfg)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("Open = %v; want %v mentioning %q", err, tc.kind, tc.phrase)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestListAndStat(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	put(t, s, "top.txt", []byte("top"))
	put(t, s, "a/one", []byte("1"))
	put(t, s, "a/b/two", []byte("22"))
	put(t, s, "a/b/c/three", []byte("333"))
	put(t, s, "a-sibling", []byte("sorts before a/ in key order"))
	put(t, s, "empty-dir/", nil) // a marker: an empty directory
	put(t, s, "marked/", nil)    // a marker and contents
	put(t, s, "marked/inside", []byte("x"))
	const many = 1234 // more than one page of 1000
	for i := range many {
		put(t, s, fmt.Sprintf("many/f%05d", i), []byte(strings.Repeat("x", i%7)))
	}

	names := func(es []Entry) []string {
		var n []string
		for _, e := range es {
			if e.Dir {
				n = append(n, e.Name+"/")
			} else {
				n = append(n, e.Name)
			}
		}
		return n
	}
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"", []string{"a/", "a-sibling", "empty-dir/", "many/", "marked/", "top.txt"}},
		{"a", []string{"b/", "one"}},
		{"a/b", []string{"c/", "two"}},
		{"a/b/c", []string{"three"}},
		{"empty-dir", nil},
		{"marked", []string{"inside"}},
	} {
		es, err := b.List(ctx, tc.dir)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.dir, err)
		}
		if got := names(es); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}

	es, err := b.List(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != many {
		t.Fatalf("List(many) has %d entries, want %d", len(es), many)
	}
	for i, e := range es {
		if want := fmt.Sprintf("f%05d", i); e.Name != want || e.Size != int64(i%7) || e.Dir || e.ModTime.IsZero() || e.ETag == "" {
			t.Fatalf("entry %d = %+v, want a file %s of %d bytes with a time and an ETag", i, e, want, i%7)
		}
	}

	for _, tc := range []struct {
		path string
		dir  bool
		size int64
		kind error
	}{
		{"", true, 0, nil},
		{"top.txt", false, 3, nil},
		{"a", true, 0, nil},
		{"a/b/c/three", false, 3, nil},
		{"empty-dir", true, 0, nil},
		{"many/f00006", false, 6, nil},
		{"nope", false, 0, ErrNotFound},
		{"a/nope", false, 0, ErrNotFound},
		{"a/../top.txt", false, 0, ErrInvalid},
		{"/top.txt", false, 0, ErrInvalid},
		{"a/", false, 0, ErrInvalid},
	} {
		// Once from S3, once from the cached listing of the parent.
		for _, cached := range []bool{false, true} {
			if !cached {
				b.cache.invalidate(tc.path + "/x")
			}
			e, err := b.Stat(ctx, tc.path)
			if tc.kind != nil {
				if !errors.Is(err, tc.kind) {
					t.Errorf("Stat(%q) cached=%v: %v, want %v", tc.path, cached, err, tc.kind)
				}
				continue
			}
			if err != nil || e.Dir != tc.dir || e.Size != tc.size {
				t.Errorf("Stat(%q) cached=%v = %+v, %v; want dir=%v size=%d", tc.path, cached, e, err, tc.dir, tc.size)
			}
			if !cached {
				if _, err := b.List(ctx, parent(tc.path)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	if _, err := b.List(ctx, "top.txt"); !errors.Is(err, ErrNotDir) {
		t.Errorf("List(file) = %v, want ErrNotDir", err)
	}
	if _, err := b.List(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("List(missing) = %v, want ErrNotFound", err)
	}

	// A file and a directory of one name: the file wins, everywhere.
	put(t, s, "dual", []byte("file"))
	put(t, s, "dual/child", []byte("x"))
	b.cache.invalidate("dual")
	if e, err := b.Stat(ctx, "dual"); err != nil || e.Dir {
		t.Errorf("Stat(dual) = %+v, %v; want the file", e, err)
	}
	es, _ = b.List(ctx, "")
	if i := slices.IndexFunc(es, func(e Entry) bool { return e.Name == "dual" }); i < 0 || es[i].Dir ||
		slices.ContainsFunc(es[i+1:], func(e Entry) bool { return e.Name == "dual" }) {
		t.Errorf("List(\"\") = %v; want one file named dual", names(es))
	}
}

func parent(p string) string {
	dir, _ := splitPath(p)
	return dir
}

func TestListCache(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	put(t, s, "d/x", []byte("x"))
	if es, _ := b.List(ctx, "d"); len(es) != 1 {
		t.Fatalf("List = %v", es)
	}
	// Another writer's object shows only once the listing expires...
	put(t, s, "d/other", []byte("y"))
	if es, _ := b.List(ctx, "d"); len(es) != 1 {
		t.Errorf("a fresh listing was not served from the cache: %v", es)
	}
	// ...but this Bucket's own writes show at once, in every directory
	// on the path.
	w, err := b.Create(ctx, "d/e/mine")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := b.List(ctx, "d")
	if err != nil || len(es) != 3 {
		t.Errorf("after Create: List(d) = %v, %v; want e/, other, x", es, err)
	}
	if e, err := b.Stat(ctx, "d/e/mine"); err != nil || e.Size != 1 {
		t.Errorf("Stat(new file) = %+v, %v", e, err)
	}
	// The cache never hands out its own slice.
	es[0].Name = "changed"
	if es, _ := b.List(ctx, "d"); es[0].Name == "changed" {
		t.Error("List returned the cached slice")
	}
}

func TestReadOnly(t *testing.T) {
	s, _ := setup(t, nil)
	put(t, s, "f", []byte("data"))
	put(t, s, "dir/", nil)
	b := openBucket(t, s, func(c *Config) { c.ReadOnly = true })
	ctx := context.Background()
	if !b.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	for name, err := range map[string]error{
		"create": func() error { _, err := b.Create(ctx, "new"); return err }(),
		"remove": b.Remove(ctx, "f"),
		"rmdir":  b.Remove(ctx, "dir"),
		"mkdir":  b.Mkdir(ctx, "newdir"),
		"rename": b.Rename(ctx, "f", "g"),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s = %v, want ErrReadOnly", name, err)
		}
	}
	// Reads work, and nothing changed.
	r, err := b.Open(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := get(t, s, "f"); string(got) != "data" {
		t.Errorf("f = %q", got)
	}
}

func TestRemoveMkdirRename(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	put(t, s, "f", []byte("file"))
	put(t, s, "full/x", []byte("x"))
	client := s.Client()
	exists := func(key string) bool {
		_, err := client.StatObject(ctx, testBucket, key, minio.StatObjectOptions{})
		return err == nil
	}

	// Mkdir makes a marker; a second one, or one over a file, fails.
	if err := b.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if !exists("d/") {
		t.Error("Mkdir made no d/ marker")
	}
	if e, err := b.Stat(ctx, "d"); err != nil || !e.Dir {
		t.Errorf("Stat(d) = %+v, %v", e, err)
	}
	for _, p := range []string{"d", "f", "full"} {
		if err := b.Mkdir(ctx, p); !errors.Is(err, ErrExist) {
			t.Errorf("Mkdir(%s) = %v, want ErrExist", p, err)
		}
	}
	if err := b.Mkdir(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Mkdir(root) = %v, want ErrInvalid", err)
	}

	// Remove: a file, an empty dir; not a full dir, not nothing.
	if err := b.Remove(ctx, "full"); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Remove(full) = %v, want ErrNotEmpty", err)
	}
	put(t, s, "d/inside", []byte("x"))
	b.cache.invalidate("d/inside")
	if err := b.Remove(ctx, "d"); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Remove(dir with marker and an object) = %v, want ErrNotEmpty", err)
	}
	if err := b.Remove(ctx, "d/inside"); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "d"); err != nil {
		t.Errorf("Remove(empty dir) = %v", err)
	}
	if exists("d/") {
		t.Error("Remove(d) left the marker")
	}
	if err := b.Remove(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(nope) = %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after Remove = %v, want ErrNotFound", err)
	}

	// Rename: a file moves, replacing a file; directories do not.
	put(t, s, "target", []byte("old"))
	if err := b.Rename(ctx, "f", "target"); err != nil {
		t.Fatal(err)
	}
	if exists("f") || string(get(t, s, "target")) != "file" {
		t.Error("Rename did not move f over target")
	}
	if err := b.Rename(ctx, "target", "sub/moved"); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Stat(ctx, "sub/moved"); err != nil || e.Size != 4 {
		t.Errorf("Stat(renamed) = %+v, %v", e, err)
	}
	if err := b.Rename(ctx, "full", "other"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Rename(dir) = %v, want ErrNotSupported", err)
	}
	if err := b.Rename(ctx, "sub/moved", "full"); !errors.Is(err, ErrIsDir) {
		t.Errorf("Rename(onto dir) = %v, want ErrIsDir", err)
	}
	if err := b.Rename(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rename(nope) = %v, want ErrNotFound", err)
	}
	if err := b.Rename(ctx, "sub/moved", "../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Rename(to ../x) = %v, want ErrInvalid", err)
	}
}
