package datastore

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The cache directory:
//
//	lock             flock'ed by the Store using the directory
//	clean            present only between a clean Close and the next New
//	tmp/             files being written; emptied by New
//	chunks/ab/HASH   cached chunks, named by their SHA-256
//	files/ab/KEY     files materialized by LocalFile, named by fileKey
const (
	lockName   = "lock"
	cleanName  = "clean"
	tmpDir     = "tmp"
	chunksDir  = "chunks"
	filesDir   = "files"
	blockBytes = 4096
)

// entry is one file in the cache.
type entry struct {
	key  string // path relative to the cache dir, e.g. chunks/ab/abcd…
	file bool   // a LocalFile file, not a chunk
	size int64
	cost int64 // size in whole blocks: what it takes on disk
	// verified: the content is known to match its name. Entries admitted
	// by this Store are; entries found by New are too after a clean Close,
	// otherwise they are hashed on first use, since a crash can leave a
	// file that was renamed into place but never written back.
	verified bool
	refs     int  // readers using f right now; such an entry is not evicted
	removed  bool // no longer in the index; f is closed when refs drops to 0
	f        *os.File
	lru      *list.Element
	fdElem   *list.Element
}

// diskCost rounds a file size up to whole blocks, which is what it occupies.
func diskCost(size int64) int64 { return (size + blockBytes - 1) &^ (blockBytes - 1) }

func chunkKey(hash string) string { return chunksDir + "/" + hash[:2] + "/" + hash }

func (s *Store) path(key string) string { return filepath.Join(s.dir, key) }

// openCache locks the cache dir, prepares its layout and rebuilds the index
// from what previous Stores left, least recently written evicted first.
func (s *Store) openCache() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	s.lock = lock
	if err := flock(lock, unix.LOCK_EX); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return errors.New("in use by another Store")
		}
		return err
	}
	// The marker says everything was synced at the last Close. Removing it
	// (durably) before using the cache means a crash from here on is seen
	// as one by the next New.
	trusted := false
	if err := os.Remove(filepath.Join(s.dir, cleanName)); err == nil {
		trusted = true
		if err := syncDir(s.dir); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.RemoveAll(filepath.Join(s.dir, tmpDir)); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.dir, tmpDir), 0o700); err != nil {
		return err
	}

	type found struct {
		e     *entry
		mtime time.Time
	}
	var all []found
	for _, kind := range []string{chunksDir, filesDir} {
		for i := range 256 {
			fan := fmt.Sprintf("%02x", i)
			dir := filepath.Join(s.dir, kind, fan)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			des, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			for _, de := range des {
				name := de.Name()
				info, err := de.Info()
				if err != nil || !de.Type().IsRegular() || !validHash(name) || name[:2] != fan {
					// Not ours: it would take space the index does not count.
					s.log.Warn("datastore: removing stray file from cache", "path", filepath.Join(dir, name))
					os.RemoveAll(filepath.Join(dir, name))
					continue
				}
				e := &entry{key: kind + "/" + fan + "/" + name, file: kind == filesDir,
					size: info.Size(), cost: diskCost(info.Size()), verified: trusted}
				all = append(all, found{e, info.ModTime()})
			}
		}
	}
	slices.SortFunc(all, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range all {
		s.used += f.e.cost
		s.insertLocked(f.e)
	}
	// The bound may have shrunk since the last run.
	s.reserveLocked(0)
	return nil
}

// markClean syncs the cache's file system and leaves the marker that lets
// the next New trust the cache.
func (s *Store) markClean() error {
	if err := unix.Syncfs(int(s.lock.Fd())); err != nil {
		return fmt.Errorf("datastore: sync cache: %w", err)
	}
	f, err := os.Create(filepath.Join(s.dir, cleanName))
	if err != nil {
		return fmt.Errorf("datastore: mark cache clean: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("datastore: mark cache clean: %w", err)
	}
	return nil
}

// insertLocked adds e to the index as the most recently used entry. Its
// cost must already be counted in s.used (by a reservation).
func (s *Store) insertLocked(e *entry) {
	e.lru = s.lru.PushFront(e)
	s.entries[e.key] = e
}

// reserveLocked makes room for n more bytes and counts them as used. It
// evicts least recently used entries first, skipping those in use: chunks
// being read, and files pinned by an open LocalFile handle. It reports
// false, counting nothing, when that does not free enough.
//
// Victims are unlinked before it returns, so whoever reserved can write
// its n bytes without the bytes on disk ever exceeding s.used.
func (s *Store) reserveLocked(n int64) bool {
	bound := s.opts.CacheBytes
	if n > bound {
		return false
	}
	for el := s.lru.Back(); el != nil && s.used+n > bound; {
		prev := el.Prev()
		if e := el.Value.(*entry); s.evictableLocked(e) {
			s.removeLocked(e)
			s.evictions++
		}
		el = prev
	}
	if s.used+n > bound {
		return false
	}
	s.used += n
	return true
}

// evictableLocked reports whether e may be evicted now. A LocalFile file is
// pinned while any handle LocalFile returned for it is open: each carries a
// shared flock, which the kernel drops only when the last reference to that
// open file goes, including the reference FUSE passthrough takes. So an
// exclusive flock that succeeds proves nobody has the file open, and since
// LocalFile opens files under s.mu, nobody can until it is unlinked.
func (s *Store) evictableLocked(e *entry) bool {
	if e.refs > 0 {
		return false
	}
	if !e.file {
		return true
	}
	f, err := os.Open(s.path(e.key))
	if err != nil {
		return true // already gone
	}
	defer f.Close()
	return flock(f, unix.LOCK_EX) == nil
}

// removeLocked takes e out of the index and deletes its file.
func (s *Store) removeLocked(e *entry) {
	delete(s.entries, e.key)
	s.lru.Remove(e.lru)
	s.used -= e.cost
	e.removed = true
	if e.refs == 0 && e.f != nil {
		s.closeFDLocked(e)
	}
	if err := os.Remove(s.path(e.key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("datastore: cannot remove cache file", "path", s.path(e.key), "err", err)
	}
}

func (s *Store) closeFDLocked(e *entry) {
	e.f.Close()
	s.fds.Remove(e.fdElem)
	e.f, e.fdElem = nil, nil
}

// drop removes e from the cache because its file is wrong, if nobody has
// done so already.
func (s *Store) drop(e *entry, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.key] == e {
		s.log.Warn("datastore: dropping bad cache file", "path", s.path(e.key), "reason", why)
		s.removeLocked(e)
	}
}

// acquire looks up a cached chunk and, on a hit, returns it with an open
// file the caller may pread until it calls release, and whether its
// content is verified. The size check on opening catches a file truncated
// behind our back; later truncation shows up as a short read.
func (s *Store) acquire(key string) (e *entry, verified bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e = s.entries[key]
	if e == nil || s.closed {
		return nil, false
	}
	if e.f == nil {
		f, err := os.Open(s.path(key))
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil && fi.Size() != e.size {
				err = fmt.Errorf("file is %d bytes, index says %d", fi.Size(), e.size)
			}
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			s.log.Warn("datastore: dropping unreadable cache file", "path", s.path(key), "err", err)
			s.removeLocked(e)
			return nil, false
		}
		e.f = f
		e.fdElem = s.fds.PushFront(e)
		s.trimFDsLocked()
	} else {
		s.fds.MoveToFront(e.fdElem)
	}
	s.lru.MoveToFront(e.lru)
	e.refs++
	return e, e.verified
}

// release ends a use that acquire began.
func (s *Store) release(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.removed && e.f != nil {
		s.closeFDLocked(e)
	}
}

// trimFDsLocked closes the least recently used idle descriptors beyond
// maxOpenFiles.
func (s *Store) trimFDsLocked() {
	for el := s.fds.Back(); el != nil && s.fds.Len() > maxOpenFiles; {
		prev := el.Prev()
		if e := el.Value.(*entry); e.refs == 0 {
			s.closeFDLocked(e)
		}
		el = prev
	}
}

// setVerified records that e's content has been checked.
func (s *Store) setVerified(e *entry) {
	s.mu.Lock()
	e.verified = true
	s.mu.Unlock()
}

// admit puts a verified chunk into the cache if there is room for it.
// Failing to cache is not an error for the read that fetched it.
func (s *Store) admit(ref ChunkRef, data []byte) {
	key := chunkKey(ref.Hash)
	cost := diskCost(ref.Size)
	s.mu.Lock()
	if s.closed || s.entries[key] != nil {
		s.mu.Unlock()
		return
	}
	recycled := s.recycleLocked(ref.Size)
	if recycled == "" && !s.reserveLocked(cost) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	err := s.writeCacheFile(key, data, recycled)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.used -= cost
		s.log.Warn("datastore: cannot cache chunk", "hash", ref.Hash, "err", err)
		return
	}
	s.insertLocked(&entry{key: key, size: ref.Size, cost: cost, verified: true})
}

// recycleCandidates is how far from the LRU end recycleLocked looks for a
// chunk of the right size.
const recycleCandidates = 8

// recycleLocked, when the cache is full, evicts a least recently used idle
// chunk exactly size bytes long and, instead of deleting it, moves it into
// tmp/ and returns its path; its cost becomes the caller's reservation.
// Overwriting a file in place is an order of magnitude cheaper than
// allocating a new one (file creation and block allocation dominate the
// cost of admitting a chunk on ext4), and a full cache of equal-sized
// chunks is the steady state. It returns "" when there is no such chunk.
func (s *Store) recycleLocked(size int64) string {
	if s.used+diskCost(size) <= s.opts.CacheBytes {
		return ""
	}
	el := s.lru.Back()
	for range recycleCandidates {
		if el == nil {
			return ""
		}
		if e := el.Value.(*entry); !e.file && e.size == size && e.refs == 0 {
			s.recycled++
			tmp := filepath.Join(s.dir, tmpDir, "recycled-"+strconv.FormatInt(s.recycled, 10))
			if err := os.Rename(s.path(e.key), tmp); err != nil {
				return ""
			}
			delete(s.entries, e.key)
			s.lru.Remove(e.lru)
			e.removed = true
			if e.f != nil {
				s.closeFDLocked(e)
			}
			s.evictions++
			return tmp // e.cost stays counted in s.used, for the caller
		}
		el = el.Prev()
	}
	return ""
}

// writeCacheFile writes data into a temporary file (recycled, if not "",
// else a new one) and renames it to key, so the index never names a
// half-written file. It does not fsync: a crash clears the clean marker,
// which makes New distrust (and rehash) the cache.
func (s *Store) writeCacheFile(key string, data []byte, recycled string) error {
	var f *os.File
	var err error
	if recycled != "" {
		// Same size, so overwriting every byte leaves nothing stale.
		f, err = os.OpenFile(recycled, os.O_WRONLY, 0)
	} else {
		f, err = os.CreateTemp(filepath.Join(s.dir, tmpDir), "chunk-*")
	}
	if err != nil {
		if recycled != "" {
			os.Remove(recycled)
		}
		return err
	}
	_, err = f.WriteAt(data, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.path(key))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
