package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

// changes lets a test wait for what happens on the server's side after a
// call has returned (a commit at RELEASE), without sleeping: every change
// closes the current channel.
type changes struct {
	ch chan struct{}
}

func (c *changes) changed() {
	if c.ch != nil {
		close(c.ch)
	}
	c.ch = make(chan struct{})
}

func (c *changes) wait() <-chan struct{} {
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// Datasets is an in-memory vfs.Datasets. A dataset it has not heard of is
// empty, initializing and unlimited.
type Datasets struct {
	spool string
	local string // a directory for local copies of content ("" : none)

	mu      sync.Mutex
	sets    map[policy.ID]*dataset
	fail    error
	commits []string
	opens   int
	stats   int
	reads   atomic.Int64
	changes changes
}

type dataset struct {
	sealed bool
	limit  int64 // -1: none
	files  map[string]*dsEntry
	ino    uint64
}

type dsEntry struct {
	dir   bool
	data  []byte
	mtime time.Time
	ino   uint64
	local string // the local copy of data, once made
}

// NewDatasets returns datasets spooling to spool. With local, DatasetOpen
// gives each content a local file there (for passthrough).
func NewDatasets(spool, local string) *Datasets {
	return &Datasets{spool: spool, local: local, sets: map[policy.ID]*dataset{}}
}

func (d *Datasets) set(id policy.ID) *dataset {
	s, ok := d.sets[id]
	if !ok {
		s = &dataset{limit: -1, files: map[string]*dsEntry{"": {dir: true, ino: 1}}, ino: 1}
		d.sets[id] = s
	}
	return s
}

// Put stores a file (and its parent directories) in dataset id.
func (d *Datasets) Put(id policy.ID, p string, content []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.set(id)
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := s.files[dir]; !ok {
			s.ino++
			s.files[dir] = &dsEntry{dir: true, mtime: time.Now().UTC(), ino: s.ino}
		}
	}
	s.ino++
	s.files[p] = &dsEntry{data: bytes.Clone(content), mtime: time.Now().UTC(), ino: s.ino}
}

// Get returns a file's content.
func (d *Datasets) Get(id policy.ID, p string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.set(id).files[p]
	if !ok || e.dir {
		return nil, false
	}
	return bytes.Clone(e.data), true
}

// Has reports whether anything is at p.
func (d *Datasets) Has(id policy.ID, p string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.set(id).files[p]
	return ok
}

// Seal seals dataset id.
func (d *Datasets) Seal(id policy.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set(id).sealed = true
}

// Limit sets dataset id's size limit (-1: none).
func (d *Datasets) Limit(id policy.ID, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set(id).limit = n
}

// Fail makes every call that takes a context return err (nil: work again).
func (d *Datasets) Fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

// Commits returns the paths committed so far, and forgets them.
func (d *Datasets) Commits() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.commits
	d.commits = nil
	return c
}

// Stats is how many times DatasetStat was called.
func (d *Datasets) Stats() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Reads is how many times content was read (ReadAt).
func (d *Datasets) Reads() int64 { return d.reads.Load() }

// Opens is how many times content was opened.
func (d *Datasets) Opens() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opens
}

// WaitFor waits up to timeout for cond (called under the lock) to hold.
func (d *Datasets) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		ok := cond()
		ch := d.changes.wait()
		d.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Content returns a file's content for WaitFor's conditions (under the lock).
func (d *Datasets) Content(id policy.ID, p string) (string, bool) {
	e, ok := d.set(id).files[p]
	if !ok || e.dir {
		return "", false
	}
	return string(e.data), true
}

func (s *dataset) used() int64 {
	var n int64
	for _, e := range s.files {
		n += int64(len(e.data))
	}
	return n
}

func (s *dataset) entry(p string) (vfs.DatasetEntry, error) {
	e, ok := s.files[p]
	if !ok {
		return vfs.DatasetEntry{}, fmt.Errorf("%q: %w", p, vfs.ErrNotFound)
	}
	return vfs.DatasetEntry{Name: path.Base(p), Dir: e.dir, Size: int64(len(e.data)), MTime: e.mtime, Ino: e.ino}, nil
}

// parent checks that p's directory exists.
func (s *dataset) parent(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	e, ok := s.files[dir]
	switch {
	case !ok:
		return fmt.Errorf("%q: %w", dir, vfs.ErrNotFound)
	case !e.dir:
		return fmt.Errorf("%q: %w", dir, vfs.ErrNotDir)
	}
	return nil
}

func (d *Datasets) DatasetInfo(id policy.ID) (bool, int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.set(id)
	free := int64(-1)
	if s.limit >= 0 {
		free = max(0, s.limit-s.used())
	}
	return s.sealed, free, nil
}

func (d *Datasets) DatasetStat(id policy.ID, p string) (vfs.DatasetEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats++
	return d.set(id).entry(p)
}

func (d *Datasets) DatasetList(id policy.ID, dir string) ([]vfs.DatasetEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.set(id)
	if e, err := s.entry(dir); err != nil {
		return nil, err
	} else if !e.Dir {
		return nil, vfs.ErrNotDir
	}
	var out []vfs.DatasetEntry
	for p := range s.files {
		pd := path.Dir(p)
		if pd == "." {
			pd = ""
		}
		if p != "" && pd == dir {
			e, _ := s.entry(p)
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b vfs.DatasetEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (d *Datasets) DatasetOpen(ctx context.Context, id policy.ID, p string) (vfs.FileContent, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	e, ok := d.set(id).files[p]
	if !ok || e.dir {
		return nil, fmt.Errorf("%q: %w", p, vfs.ErrNotFound)
	}
	d.opens++
	c := &content{r: bytes.NewReader(e.data), reads: &d.reads}
	if d.local != "" {
		if e.local == "" { // one local copy per content, as a cache would keep
			f, err := os.CreateTemp(d.local, "content-*")
			if err != nil {
				return nil, err
			}
			_, err = f.Write(e.data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			e.local = f.Name()
		}
		f, err := os.Open(e.local)
		if err != nil {
			return nil, err
		}
		c.f = f
	}
	return c, nil
}

// content is a FileContent: in memory, or a local file.
type content struct {
	r     *bytes.Reader
	f     *os.File
	reads *atomic.Int64
}

func (c *content) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	if c.f != nil {
		return c.f.ReadAt(p, off)
	}
	return c.r.ReadAt(p, off)
}

func (c *content) Close() error {
	if c.f != nil {
		return c.f.Close()
	}
	return nil
}

func (c *content) LocalFile() (*os.File, bool) { return c.f, c.f != nil }

func (d *Datasets) DatasetCommit(ctx context.Context, p policy.ID, id policy.ID, fp string, f *os.File, size int64) error {
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	s := d.set(id)
	if s.sealed {
		return vfs.ErrReadOnly
	}
	if err := s.parent(fp); err != nil {
		return err
	}
	old, ok := s.files[fp]
	if ok && old.dir {
		return vfs.ErrIsDir
	}
	var was int64
	if ok {
		was = int64(len(old.data))
	}
	if s.limit >= 0 && s.used()-was+size > s.limit {
		return vfs.ErrNoSpace
	}
	ino := uint64(0)
	if ok {
		ino = old.ino
	} else {
		s.ino++
		ino = s.ino
	}
	s.files[fp] = &dsEntry{data: data, mtime: time.Now().UTC(), ino: ino}
	d.commits = append(d.commits, fp)
	d.changes.changed()
	return nil
}

func (d *Datasets) DatasetMkdir(ctx context.Context, p policy.ID, id policy.ID, fp string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	s := d.set(id)
	if _, ok := s.files[fp]; ok {
		return vfs.ErrExists
	}
	if err := s.parent(fp); err != nil {
		return err
	}
	s.ino++
	s.files[fp] = &dsEntry{dir: true, mtime: time.Now().UTC(), ino: s.ino}
	return nil
}

func (d *Datasets) DatasetRemove(ctx context.Context, p policy.ID, id policy.ID, fp string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	s := d.set(id)
	e, ok := s.files[fp]
	if !ok {
		return vfs.ErrNotFound
	}
	if e.dir {
		for q := range s.files {
			if strings.HasPrefix(q, fp+"/") {
				return vfs.ErrNotEmpty
			}
		}
	}
	delete(s.files, fp)
	return nil
}

func (d *Datasets) SpoolDir() string { return d.spool }

// Buckets is an in-memory vfs.Buckets: one Bucket per connector, made on
// first use.
type Buckets struct {
	mu      sync.Mutex
	buckets map[policy.ID]*Bucket
	fail    error
}

// NewBuckets returns empty buckets.
func NewBuckets() *Buckets { return &Buckets{buckets: map[policy.ID]*Bucket{}} }

// Of returns connector's bucket.
func (bs *Buckets) Of(connector policy.ID) *Bucket {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.buckets[connector]
	if !ok {
		b = &Bucket{objects: map[string]object{}, dirs: map[string]bool{}}
		bs.buckets[connector] = b
	}
	return b
}

// Fail makes Bucket fail with err (nil: work again).
func (bs *Buckets) Fail(err error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.fail = err
}

func (bs *Buckets) Bucket(ctx context.Context, connector policy.ID) (vfs.Bucket, error) {
	bs.mu.Lock()
	fail := bs.fail
	bs.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return bs.Of(connector), nil
}

// Bucket is an in-memory vfs.Bucket.
type Bucket struct {
	mu       sync.Mutex
	readOnly bool
	objects  map[string]object
	dirs     map[string]bool // directory markers
	fail     error
	changes  changes
	readers  int // open readers
	stats    int // Stat calls
}

type object struct {
	data  []byte
	mtime time.Time
}

// SetReadOnly makes the connector read-only (or not).
func (b *Bucket) SetReadOnly(ro bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.readOnly = ro
}

// Fail makes every call fail with err (nil: work again).
func (b *Bucket) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

// Put stores an object.
func (b *Bucket) Put(key string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = object{bytes.Clone(data), time.Now().UTC()}
	b.changes.changed()
}

// Get returns an object's content.
func (b *Bucket) Get(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[key]
	return bytes.Clone(o.data), ok
}

// WaitFor waits up to timeout for the object key to hold want.
func (b *Bucket) WaitFor(timeout time.Duration, key, want string) bool {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		o, ok := b.objects[key]
		ch := b.changes.wait()
		b.mu.Unlock()
		if ok && string(o.data) == want {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Stats is how many times Stat was called.
func (b *Bucket) Stats() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Readers is how many readers are open.
func (b *Bucket) Readers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readers
}

func (b *Bucket) ReadOnly() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readOnly
}

func (b *Bucket) isDir(p string) bool {
	if p == "" || b.dirs[p] {
		return true
	}
	for k := range b.objects {
		if strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	for k := range b.dirs {
		if strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	return false
}

func (b *Bucket) Stat(ctx context.Context, p string) (vfs.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats++
	if b.fail != nil {
		return vfs.ObjectInfo{}, b.fail
	}
	if o, ok := b.objects[p]; ok {
		return vfs.ObjectInfo{Name: path.Base(p), Size: int64(len(o.data)), MTime: o.mtime}, nil
	}
	if b.isDir(p) {
		return vfs.ObjectInfo{Name: path.Base(p), Dir: true}, nil
	}
	return vfs.ObjectInfo{}, fmt.Errorf("%q: %w", p, vfs.ErrNotFound)
}

func (b *Bucket) List(ctx context.Context, dir string) ([]vfs.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	seen := map[string]vfs.ObjectInfo{}
	add := func(k string, o *object) {
		if !strings.HasPrefix(k, prefix) {
			return
		}
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seen[rest[:i]] = vfs.ObjectInfo{Name: rest[:i], Dir: true}
		} else if o != nil {
			seen[rest] = vfs.ObjectInfo{Name: rest, Size: int64(len(o.data)), MTime: o.mtime}
		} else {
			seen[rest] = vfs.ObjectInfo{Name: rest, Dir: true}
		}
	}
	for k, o := range b.objects {
		add(k, &o)
	}
	for k := range b.dirs {
		add(k, nil)
	}
	out := make([]vfs.ObjectInfo, 0, len(seen))
	for _, o := range seen {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b vfs.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (b *Bucket) Open(ctx context.Context, p string) (vfs.ObjectReader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	o, ok := b.objects[p]
	if !ok {
		return nil, fmt.Errorf("%q: %w", p, vfs.ErrNotFound)
	}
	b.readers++
	return &reader{b: b, r: bytes.NewReader(o.data)}, nil
}

type reader struct {
	b *Bucket
	r *bytes.Reader
}

func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	r.b.mu.Lock()
	fail := r.b.fail
	r.b.mu.Unlock()
	if fail != nil {
		return 0, fail
	}
	return r.r.ReadAt(p, off)
}

func (r *reader) Close() error {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	r.b.readers--
	return nil
}

func (b *Bucket) Create(ctx context.Context, p string) (vfs.ObjectWriter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	return &writer{b: b, key: p}, nil
}

type writer struct {
	b    *Bucket
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	if w.done || off != int64(w.buf.Len()) {
		return 0, vfs.ErrNotSupported
	}
	return w.buf.Write(p)
}

func (w *writer) Close() error {
	if w.done {
		return fmt.Errorf("writer of %q closed twice", w.key)
	}
	w.done = true
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	if w.b.fail != nil {
		return w.b.fail
	}
	w.b.objects[w.key] = object{bytes.Clone(w.buf.Bytes()), time.Now().UTC()}
	w.b.changes.changed()
	return nil
}

func (w *writer) Abort() { w.done = true }

func (b *Bucket) Remove(ctx context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	if _, ok := b.objects[p]; ok {
		delete(b.objects, p)
		return nil
	}
	for k := range b.objects {
		if strings.HasPrefix(k, p+"/") {
			return vfs.ErrNotEmpty
		}
	}
	for k := range b.dirs {
		if strings.HasPrefix(k, p+"/") {
			return vfs.ErrNotEmpty
		}
	}
	if !b.dirs[p] {
		return vfs.ErrNotFound
	}
	delete(b.dirs, p)
	return nil
}

func (b *Bucket) Mkdir(ctx context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.dirs[p] = true
	return nil
}

func (b *Bucket) Rename(ctx context.Context, from, to string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	o, ok := b.objects[from]
	if !ok {
		return vfs.ErrNotFound
	}
	delete(b.objects, from)
	b.objects[to] = o
	b.changes.changed()
	return nil
}
