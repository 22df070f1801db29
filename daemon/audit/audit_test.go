package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func decode(t *testing.T, line string) Record {
	t.Helper()
	var r Record
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("line is not a JSON record: %v\n%s", err, line)
	}
	return r
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(Record{
					UID:       uint32(1000 + w),
					Principal: "user",
					Action:    "read",
					Path:      "org/c/p/datasets/d/file-" + strings.Repeat("x", i%50),
					Decision:  Allow,
					Binding:   "datasphere.community-projects.developer@org/c/p",
				})
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readLines(t, path)
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	perUID := map[uint32]int{}
	for _, line := range lines {
		r := decode(t, line)
		perUID[r.UID]++
		if r.Decision != Allow || r.Action != "read" {
			t.Fatalf("record garbled: %+v", r)
		}
	}
	for w := range writers {
		if perUID[uint32(1000+w)] != each {
			t.Errorf("uid %d: %d records, want %d", 1000+w, perUID[uint32(1000+w)], each)
		}
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", l.Dropped())
	}
}

func TestCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		l.Record(Record{UID: 1, Action: "lookup", Path: "p", Decision: Deny, Missing: "viewer"})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, path)); n != 1000 {
		t.Fatalf("%d lines after Close, want 1000", n)
	}

	// After Close, Record is a harmless no-op and a second Close says so.
	l.Record(Record{Action: "late"})
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if n := len(readLines(t, path)); n != 1000 {
		t.Errorf("%d lines after a late Record, want 1000", n)
	}
}

// TestPromptWrite checks that a record reaches the file without Close, soon
// enough that a crash right after an operation still leaves its trace.
func TestPromptWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	start := time.Now()
	l.Record(Record{UID: 7, Action: "open", Path: "x", Decision: Allow})
	// The design target is ~100ms; allow slack for a loaded CI machine
	// running with -race, but not so much that "never" would pass.
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("record not in the file 2s after Record")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("record visible after %v", time.Since(start))
}

func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		prepare func(path string)
	}{
		{"new file", func(string) {}},
		{"existing 0644 file is tightened", func(p string) {
			if err := os.WriteFile(p, []byte("{\"old\":1}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"), "audit.log")
			os.MkdirAll(filepath.Dir(path), 0o700)
			tc.prepare(path)
			before := 0
			if b, err := os.ReadFile(path); err == nil {
				before = strings.Count(string(b), "\n")
			}
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			l.Record(Record{Action: "a", Decision: Allow})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o, want 0600", st.Mode().Perm())
			}
			// Appends, never truncates.
			if n := len(readLines(t, path)); n != before+1 {
				t.Errorf("%d lines, want %d", n, before+1)
			}
		})
	}
}

func TestRecordFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	moscow := time.FixedZone("MSK", 3*3600)
	when := time.Date(2026, 3, 1, 15, 4, 5, 0, moscow)
	l.Record(Record{Time: when, UID: 1001, Principal: "valya", Action: "write",
		Path: "evil\nname<&>", Decision: Deny, Missing: "datasphere.community-projects.developer"})
	l.Record(Record{UID: 0, Action: "mkdir", Path: "p", Decision: Allow}) // zero time
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (a newline in a path must not split a record)", len(lines))
	}
	if !strings.Contains(lines[0], `"time":"2026-03-01T12:04:05Z"`) {
		t.Errorf("time not in UTC: %s", lines[0])
	}
	if !strings.Contains(lines[0], `<&>`) {
		t.Errorf("path needlessly HTML-escaped: %s", lines[0])
	}
	if strings.Contains(lines[0], `"binding"`) {
		t.Errorf("empty binding not omitted: %s", lines[0])
	}
	r := decode(t, lines[0])
	if r.Path != "evil\nname<&>" || r.UID != 1001 || r.Principal != "valya" {
		t.Errorf("round trip: %+v", r)
	}
	r2 := decode(t, lines[1])
	if r2.Time.IsZero() || time.Since(r2.Time) > time.Minute || r2.Time.Location() != time.UTC {
		t.Errorf("zero time not set to now in UTC: %v", r2.Time)
	}
}

func TestDiscardAndNil(t *testing.T) {
	l, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Record{Action: "x"})
	if err := l.Close(); err != nil {
		t.Errorf("Close of discarding log: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close of discarding log: %v", err)
	}

	var nilLog *Log
	nilLog.Record(Record{Action: "x"})
	if err := nilLog.Close(); err != nil {
		t.Errorf("Close of nil log: %v", err)
	}
}

// TestOverflowIsReported stalls the writer so the queue fills, and checks
// that Record gives up within its bound and that the loss is written down.
func TestOverflowIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Built by hand with a one-slot queue and no writer yet.
	l := &Log{queue: make(chan Record, 1), done: make(chan struct{}), f: f}

	l.Record(Record{Action: "kept", Decision: Allow})
	start := time.Now()
	l.Record(Record{Action: "lost", Decision: Allow})
	if d := time.Since(start); d > 10*maxBlock {
		t.Errorf("Record blocked %v on a full queue", d)
	}
	if l.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", l.Dropped())
	}

	go l.run()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	var actions []string
	for _, line := range lines {
		actions = append(actions, decode(t, line).Action)
	}
	if !slices.Equal(actions, []string{"kept", droppedAction}) {
		t.Fatalf("actions = %v, want [kept %s]", actions, droppedAction)
	}
}

// TestRecordHasNoValueField pins the record's fields: adding one is a
// deliberate act that must keep secret values out of the audit log.
func TestRecordHasNoValueField(t *testing.T) {
	var got []string
	rt := reflect.TypeFor[Record]()
	for i := range rt.NumField() {
		got = append(got, rt.Field(i).Name)
	}
	want := []string{"Time", "UID", "Principal", "Action", "Path", "Decision", "Binding", "Missing"}
	if !slices.Equal(got, want) {
		t.Fatalf("Record fields = %v, want %v", got, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := Record{UID: 1001, Principal: "alice", Action: "read", Path: "org/c/p/datasets/d/f.csv", Decision: Allow}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(r)
		}
	})
}
