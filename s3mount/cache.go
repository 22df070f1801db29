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
// Heads (see Bucket.Stat) live as long, and are bounded in bytes.
const (
	listTTL           = time.Second
	maxCachedDirs     = 1024
	maxCachedNames    = 200_000 // entries over all cached directories
	maxCachedHeadData = 32 << 20
)

// listCache keeps recent directory listings, and the heads of files
// recently looked up; Stat answers from both, and Open from the heads.
type listCache struct {
	mu        sync.Mutex
	gen       uint64 // bumped by every invalidation
	dirs      map[string]*listing
	names     int
	heads     map[string]*cachedHead
	headBytes int
}

// cachedHead is what a lookup's GET learned about a file: its entry and
// its first bytes (all of them for a small file).
type cachedHead struct {
	at    time.Time
	entry Entry
	data  []byte
}

type listing struct {
	at      time.Time
	entries []Entry // sorted by Name
}

func newListCache() *listCache {
	return &listCache{dirs: make(map[string]*listing), heads: make(map[string]*cachedHead)}
}

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
		c.drop(oldest(c.dirs, func(l *listing) time.Time { return l.at }))
	}
	c.dirs[dir] = &listing{at: at, entries: entries}
	c.names += len(entries)
}

// head returns the fresh head of the file at path, or nil.
func (c *listCache) head(path string) *cachedHead {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.heads[path]
	if h == nil {
		return nil
	}
	if time.Since(h.at) > listTTL {
		c.dropHead(path)
		return nil
	}
	return h
}

// putHead caches what a GET made at time at learned about the file at
// path (data is owned by the cache from now on), unless this Bucket has
// written since gen was read.
func (c *listCache) putHead(path string, gen uint64, at time.Time, e Entry, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.dropHead(path)
	if c.headBytes+len(data) > maxCachedHeadData {
		for p, h := range c.heads {
			if time.Since(h.at) > listTTL {
				c.dropHead(p)
			}
		}
	}
	for len(c.heads) > 0 && c.headBytes+len(data) > maxCachedHeadData {
		c.dropHead(oldest(c.heads, func(h *cachedHead) time.Time { return h.at }))
	}
	c.heads[path] = &cachedHead{at: at, entry: e, data: data}
	c.headBytes += len(data)
}

func (c *listCache) dropHead(path string) {
	if h, ok := c.heads[path]; ok {
		c.headBytes -= len(h.data)
		delete(c.heads, path)
	}
}

// invalidate forgets everything a write to p may have changed: the head
// and listing of p itself and the listing of every directory above it,
// since a new object can create the directories on its path.
func (c *listCache) invalidate(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.dropHead(p)
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

// oldest is the key of m's entry made longest ago.
func oldest[T any](m map[string]T, madeAt func(T) time.Time) string {
	var key string
	var at time.Time
	for k, v := range m {
		if t := madeAt(v); at.IsZero() || t.Before(at) {
			key, at = k, t
		}
	}
	return key
}
