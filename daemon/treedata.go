package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/datastore"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
	"github.com/sphere-sandbox/sphere/s3mount"
)

// The mounted tree's datasets and buckets: this file adapts the dataset
// state and blob store, and s3mount's buckets, to what fusefs/vfs declares,
// and maps their errors onto the tree's in one place each.

var (
	_ vfs.Datasets = treeStore{}
	_ vfs.Buckets  = treeStore{}
)

func (t treeStore) DatasetInfo(dataset policy.ID) (bool, int64, error) {
	var exists bool
	t.d.node.FSM().Read(func(s *cluster.State) { _, exists = s.Entities[dataset] })
	if !exists {
		return false, 0, vfs.ErrNotFound
	}
	sealed, free, _ := t.d.datasetSpace(dataset)
	return sealed, free, nil
}

// inode gives every path of a dataset a stable number, with the top bit set
// so it never meets an entity ID (which the tree uses for resources).
func inode(dataset policy.ID, p string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s", dataset, p)
	return h.Sum64() | 1<<63
}

func datasetEntry(dataset policy.ID, p string, f *cluster.DatasetFile) vfs.DatasetEntry {
	return vfs.DatasetEntry{Name: path.Base(p), Dir: f.Dir, Size: f.Size, MTime: f.MTime, Ino: inode(dataset, p)}
}

func (t treeStore) DatasetStat(dataset policy.ID, p string) (vfs.DatasetEntry, error) {
	var out vfs.DatasetEntry
	err := vfs.ErrNotFound
	t.d.node.FSM().Read(func(s *cluster.State) {
		if p == "" {
			if e, ok := s.Entities[dataset]; ok {
				out, err = vfs.DatasetEntry{Name: e.Name, Dir: true, MTime: e.Modified, Ino: inode(dataset, "")}, nil
			}
			return
		}
		if f, ok := s.DatasetFileAt(dataset, p); ok {
			out, err = datasetEntry(dataset, p, f), nil
		}
	})
	return out, err
}

func (t treeStore) DatasetList(dataset policy.ID, dir string) ([]vfs.DatasetEntry, error) {
	var out []vfs.DatasetEntry
	err := vfs.ErrNotFound
	t.d.node.FSM().Read(func(s *cluster.State) {
		if _, ok := s.Entities[dataset]; !ok {
			return
		}
		if dir != "" {
			if f, ok := s.DatasetFileAt(dataset, dir); !ok {
				return
			} else if !f.Dir {
				err = vfs.ErrNotDir
				return
			}
		}
		err = nil
		for _, name := range s.DatasetList(dataset, dir) {
			p := path.Join(dir, name)
			f, _ := s.DatasetFileAt(dataset, p)
			out = append(out, datasetEntry(dataset, p, f))
		}
	})
	return out, err
}

// localFileMax is the largest file materialized whole in the cache at open
// when not all of it is cached yet: small enough that open stays quick.
const localFileMax = 64 << 20

func (t treeStore) DatasetOpen(ctx context.Context, dataset policy.ID, p string) (vfs.FileContent, error) {
	var refs []datastore.ChunkRef
	var size int64
	var sealed bool
	err := vfs.ErrNotFound
	t.d.node.FSM().Read(func(s *cluster.State) {
		f, ok := s.DatasetFileAt(dataset, p)
		switch {
		case !ok:
		case f.Dir:
			err = vfs.ErrIsDir
		default:
			refs, size, err = toRefs(f.Chunks), f.Size, nil
			sealed = s.Entities[dataset].Settings[cluster.SettingState] == cluster.StateSealed
		}
	})
	if err != nil {
		return nil, err
	}
	c := &datasetContent{r: t.d.data.Open(refs, size)}
	// A sealed file never changes: a verified local copy can be handed to
	// the kernel (passthrough), once materializing it is cheap. One read
	// through the Reader instead is copied in the background once closed,
	// if it left every chunk cached, for the next open.
	if sealed && (size <= localFileMax || t.d.data.Cached(refs)) {
		if f, err := t.d.data.LocalFile(ctx, refs, size); err == nil {
			c.local = f
		} else {
			t.d.log.Warn("dataset file served without a local copy", "dataset", dataset, "path", p, "err", err)
		}
	}
	if sealed && c.local == nil {
		c.materializeLater = func() { t.d.data.MaterializeLater(refs, size) }
	}
	return c, nil
}

// datasetContent is an open dataset file.
type datasetContent struct {
	r     *datastore.Reader
	local *os.File
	// materializeLater, if set, is called at Close.
	materializeLater func()
}

func (c *datasetContent) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %v", vfs.ErrUnavailable, err)
	}
	return n, err
}

func (c *datasetContent) LocalFile() (*os.File, bool) { return c.local, c.local != nil }

func (c *datasetContent) Close() error {
	if c.local != nil {
		c.local.Close()
	}
	err := c.r.Close()
	if c.materializeLater != nil {
		c.materializeLater()
	}
	return err
}

func (t treeStore) DatasetCommit(ctx context.Context, p, dataset policy.ID, filePath string, content *os.File, size int64) error {
	if err := t.d.checkWritable(p, dataset, 0); err != nil {
		return storeError(err)
	}
	chunks, stored, err := t.d.storeContent(ctx, io.NewSectionReader(content, 0, size))
	if err != nil {
		return fmt.Errorf("%w: %v", vfs.ErrUnavailable, err)
	}
	return storeError(t.d.commitFile(ctx, p, dataset, filePath, time.Now().UTC(), chunks, stored))
}

func (t treeStore) DatasetMkdir(ctx context.Context, p, dataset policy.ID, dir string) error {
	_, err := t.d.propose(ctx, caller{Principal: p}, cluster.CmdDatasetMkdir, cluster.DatasetPath{Dataset: dataset, Path: dir})
	return storeError(err)
}

func (t treeStore) DatasetRemove(ctx context.Context, p, dataset policy.ID, file string) error {
	_, err := t.d.propose(ctx, caller{Principal: p}, cluster.CmdDatasetRemove, cluster.DatasetPath{Dataset: dataset, Path: file})
	return storeError(err)
}

func (t treeStore) SpoolDir() string { return spoolDir(t.d.cfg.DataDir) }

// Bucket is a connector's bucket as the tree uses it. An inactive or
// deleted connector is absent.
func (t treeStore) Bucket(ctx context.Context, connector policy.ID) (vfs.Bucket, error) {
	b, err := t.d.buckets.get(ctx, connector)
	switch {
	case errors.Is(err, errInactive):
		return nil, vfs.ErrNotFound
	case err != nil:
		return nil, bucketError(err)
	}
	return bucket{b}, nil
}

// bucketError maps s3mount's errors onto the tree's.
func bucketError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	mapped := vfs.ErrUnavailable
	for from, to := range map[error]error{
		s3mount.ErrNotFound: vfs.ErrNotFound, s3mount.ErrNoSuchBucket: vfs.ErrNotFound,
		s3mount.ErrDenied: vfs.ErrDenied, s3mount.ErrBadCredentials: vfs.ErrDenied,
		s3mount.ErrReadOnly: vfs.ErrReadOnly, s3mount.ErrNotEmpty: vfs.ErrNotEmpty,
		s3mount.ErrIsDir: vfs.ErrIsDir, s3mount.ErrNotDir: vfs.ErrNotDir, s3mount.ErrExist: vfs.ErrExists,
		s3mount.ErrNotSupported: vfs.ErrNotSupported, s3mount.ErrInvalid: vfs.ErrInvalidName,
	} {
		if errors.Is(err, from) {
			mapped = to
		}
	}
	return fmt.Errorf("%w: %v", mapped, err)
}

// bucket adapts an s3mount.Bucket to vfs.Bucket.
type bucket struct{ b *s3mount.Bucket }

func objectInfo(e s3mount.Entry) vfs.ObjectInfo {
	return vfs.ObjectInfo{Name: e.Name, Dir: e.Dir, Size: e.Size, MTime: e.ModTime}
}

func (b bucket) ReadOnly() bool { return b.b.ReadOnly() }

func (b bucket) Stat(ctx context.Context, p string) (vfs.ObjectInfo, error) {
	e, err := b.b.Stat(ctx, p)
	return objectInfo(e), bucketError(err)
}

func (b bucket) List(ctx context.Context, dir string) ([]vfs.ObjectInfo, error) {
	es, err := b.b.List(ctx, dir)
	if err != nil {
		return nil, bucketError(err)
	}
	out := make([]vfs.ObjectInfo, len(es))
	for i, e := range es {
		out[i] = objectInfo(e)
	}
	return out, nil
}

func (b bucket) Open(ctx context.Context, p string) (vfs.ObjectReader, error) {
	r, err := b.b.Open(ctx, p)
	if err != nil {
		return nil, bucketError(err)
	}
	return objectReader{r}, nil
}

func (b bucket) Create(ctx context.Context, p string) (vfs.ObjectWriter, error) {
	w, err := b.b.Create(ctx, p)
	if err != nil {
		return nil, bucketError(err)
	}
	return objectWriter{w}, nil
}

func (b bucket) Remove(ctx context.Context, p string) error { return bucketError(b.b.Remove(ctx, p)) }
func (b bucket) Mkdir(ctx context.Context, p string) error  { return bucketError(b.b.Mkdir(ctx, p)) }
func (b bucket) Rename(ctx context.Context, from, to string) error {
	return bucketError(b.b.Rename(ctx, from, to))
}

type objectReader struct{ r *s3mount.Reader }

func (o objectReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	return n, bucketError(err)
}

func (o objectReader) Close() error { return bucketError(o.r.Close()) }

type objectWriter struct{ w *s3mount.Writer }

func (o objectWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := o.w.WriteAt(p, off)
	return n, bucketError(err)
}

func (o objectWriter) Close() error { return bucketError(o.w.Close()) }
func (o objectWriter) Abort()       { o.w.Abort() }
