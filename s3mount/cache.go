package s3mount

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Listing cache bounds. A second is long enough that `ls -l` (a readdir
// followed by a lookup per entry) is served by one listing, and short
// enough that other writers' changes show up about as fast as on s3fs.
const (
	listTTL        = time.Second
	maxCachedDirs  = 1024
	maxCachedNames = 200_000 // entries over all cached directories
)

// listCache keeps recent directory listings; Stat answers from them too.
type listCache struct {
	mu    sync.Mutex
	gen   uint64 // bumped by every invalidation
	dirs  map[string]*listing
	names int
}

type listing struct {
	at      time.Time
	entries []Entry // sorted by Name
}

func newListCache() *listCache { return &listCache{dirs: make(map[string]*listing)} }

// lookup finds name in a listing.
func (l *listing) lookup(name string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(l.entries, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return Entry{}, false
	}
	return l.entries[i], true
}

// get returns a fresh listing of dir, or nil.
func (c *listCache) get(dir string) *listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.dirs[dir]
	if l == nil {
		return nil
	}
	if time.Since(l.at) > listTTL {
		c.drop(dir)
		return nil
	}
	return l
}

// generation is read before listing; put compares it, so a listing that
// was in flight while this Bucket wrote is not cached.
func (c *listCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches entries (sorted by name, owned by the cache from now on) as
// the listing of dir made at time at.
func (c *listCache) put(dir string, gen uint64, at time.Time, entries []Entry) {
	if len(entries) > maxCachedNames {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.drop(dir)
	for len(c.dirs) >= maxCachedDirs || c.names+len(entries) > maxCachedNames {
		c.dropOldest()
	}
	c.dirs[dir] = &listing{at: at, entries: entries}
	c.names += len(entries)
}

// invalidate forgets everything a write to p may have changed: the listing
// of p itself (when it is a directory) and of every directory above it,
// since a new object can create the directories on its path.
func (c *listCache) invalidate(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for {
		c.drop(p)
		if p == "" {
			return
		}
		p, _ = splitPath(p)
	}
}

func (c *listCache) drop(dir string) {
	if l, ok := c.dirs[dir]; ok {
		c.names -= len(l.entries)
		delete(c.dirs, dir)
	}
}

func (c *listCache) dropOldest() {
	var oldest string
	var at time.Time
	for d, l := range c.dirs {
		if at.IsZero() || l.at.Before(at) {
			oldest, at = d, l.at
		}
	}
	c.drop(oldest)
}
