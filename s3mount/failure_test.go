package s3mount

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/internal/testlog"
	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

// failTimeout is the Config.Timeout of these tests, and slack what a
// loaded machine may add to it.
const (
	failTimeout = 2 * time.Second
	slack       = 1500 * time.Millisecond
)

// within runs op and checks it fails with ErrUnavailable within
// failTimeout plus slack.
func within(t *testing.T, what string, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s = %v, want ErrUnavailable", what, err)
	}
	if took > failTimeout+slack {
		t.Errorf("%s took %v; the bound is %v (+%v slack)", what, took, failTimeout, slack)
	}
	t.Logf("%s: %v after %v", what, err, took.Round(time.Millisecond))
}

// noReaderGoroutines checks nothing of a Reader is still running. Close
// returns once every fetch has called Done, a few instructions before its
// goroutine returns, so this waits briefly for them to be gone; one still
// blocked on the network would stay and fail the test.
func noReaderGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	readerRunning := func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return strings.Contains(stacks, "s3mount.(*Reader)") || strings.Contains(stacks, "s3mount.(*Bucket).readRange")
	}
	deadline := time.Now().Add(time.Second)
	for readerRunning() {
		if time.Now().After(deadline) {
			t.Errorf("reader goroutines still running a second after Close:\n%s", stacks)
			return
		}
		runtime.Gosched()
	}
}

func TestServerKilledMidRead(t *testing.T) {
	var logs testlog.Buffer
	s, b := setup(t, func(c *Config) { c.Timeout = failTimeout; c.Logger = logs.Logger() })
	const size = 64 << 20
	data := randomBytes(11, size)
	put(t, s, "obj", data)
	r, err := b.Open(context.Background(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 128<<10)
	off := int64(0)
	for ; off < 3*chunkSize/2; off += int64(len(p)) { // readahead is running
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	s.Kill()
	within(t, "reading on after SIGKILL", func() error {
		for ; off < size; off += int64(len(p)) {
			if n, err := r.ReadAt(p, off); err != nil {
				return err
			} else if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
				t.Fatalf("wrong bytes at %d", off)
			}
		}
		return nil
	})
	start := time.Now()
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > failTimeout+slack {
		t.Errorf("Close took %v", took)
	}
	noReaderGoroutines(t)
	ctx := context.Background()
	within(t, "Stat on a dead server", func() error { _, err := b.Stat(ctx, "other"); return err })
	within(t, "List on a dead server", func() error { _, err := b.List(ctx, "d"); return err })
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("no log line says why:\n%s", logs.String())
	}
}

func TestServerStalled(t *testing.T) {
	var logs testlog.Buffer
	s, b := setup(t, func(c *Config) { c.Timeout = failTimeout; c.Logger = logs.Logger() })
	put(t, s, "obj", randomBytes(12, 3*chunkSize))
	put(t, s, "small", []byte("x"))
	// Never listed before the stall: a fresh listing answers its Stat for a
	// second, and this must reach the stalled server.
	put(t, s, "unlisted/small", []byte("x"))
	ctx := context.Background()
	r, err := b.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := make([]byte, 128<<10)
	if _, err := r.ReadAt(p, headSize); err != nil { // readahead starts
		t.Fatal(err)
	}

	w, err := b.Create(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}

	s.Pause(t)
	t.Cleanup(s.Resume)
	within(t, "Stat", func() error { _, err := b.Stat(ctx, "unlisted/small"); return err })
	within(t, "List", func() error { _, err := b.List(ctx, ""); return err })
	within(t, "Open", func() error { _, err := b.Open(ctx, "small"); return err })
	within(t, "sequential ReadAt", func() error {
		for off := int64(headSize); off < 3*chunkSize; off += int64(len(p)) {
			if _, err := r.ReadAt(p, off); err != nil {
				return err
			}
		}
		return nil
	})
	within(t, "random ReadAt", func() error { _, err := r.ReadAt(p, 2*chunkSize+12345); return err })
	within(t, "Mkdir", func() error { return b.Mkdir(ctx, "d") })
	within(t, "Remove", func() error { return b.Remove(ctx, "small") })
	within(t, "Create", func() error { _, err := b.Create(ctx, "other"); return err })
	within(t, "Write and Close", func() error {
		if _, err := w.Write(make([]byte, partSize+1)); err != nil {
			return err
		}
		return w.Close()
	})
	within(t, "Open of the bucket", func() error {
		_, err := Open(ctx, Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: s.AccessKey, Secret: s.SecretKey, Timeout: failTimeout})
		return err
	})
	for _, why := range []string{"did not answer within 2s", "did not make progress within 2s"} {
		if !strings.Contains(logs.String(), why) {
			t.Errorf("no log line says %q:\n%s", why, logs.String())
		}
	}

	// Once the server is back, so is the bucket.
	s.Resume()
	if _, err := b.Stat(ctx, "small"); err != nil {
		t.Errorf("Stat after resume: %v", err)
	}
	if _, err := r.ReadAt(p, 0); err != nil && err != io.EOF {
		t.Errorf("ReadAt after resume: %v", err)
	}
}

// A connector with several endpoints goes on through the next when one
// cannot be reached: here the first endpoint is a port nobody listens on.
// Opening (which checks the bucket and the key), listing, writing and
// reading all work, requests stay signed for the first endpoint, and the
// log says which endpoint was given up.
func TestEndpointFailover(t *testing.T) {
	s := miniotest.Start(t)
	s.MakeBucket(t, testBucket)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	var logs testlog.Buffer
	b := openBucket(t, s, func(c *Config) {
		c.Endpoint = dead + "," + s.Endpoint
		c.Timeout = failTimeout
		c.Logger = logs.Logger()
	})
	ctx := context.Background()
	data := randomBytes(11, 3<<20)
	w, err := b.Create(ctx, "dir/obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("write through the second endpoint: %v", err)
	}
	if got := get(t, s, "dir/obj"); !bytes.Equal(got, data) {
		t.Errorf("written %d bytes, MinIO has %d", len(data), len(got))
	}
	if es, err := b.List(ctx, "dir"); err != nil || len(es) != 1 {
		t.Errorf("List = %v, %v", es, err)
	}
	if got := openAndRead(t, b, "dir/obj"); !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, not the %d written", len(got), len(data))
	}
	if !strings.Contains(logs.String(), "trying the next") || !strings.Contains(logs.String(), strings.TrimPrefix(dead, "http://")) {
		t.Errorf("the log does not say the first endpoint was given up:\n%s", logs.String())
	}
}
