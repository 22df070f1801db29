package datastore

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"
)

// failoverBlobs spreads one blob store over several endpoints of the same
// distributed MinIO: when the endpoint in use stops answering, the next one
// serves, so losing one MinIO node does not stop dataset reads.
type failoverBlobs struct {
	stores []*s3Blobs
	// current is the endpoint that answered last; calls start there.
	current atomic.Int32
}

var (
	_ blobReader = (*failoverBlobs)(nil)
	_ Sweeper    = (*failoverBlobs)(nil)
)

// try runs op on each endpoint in turn, from the current one, until one
// gives an answer that is not "unavailable": a missing or corrupt chunk is
// the same answer everywhere.
func (f *failoverBlobs) try(op func(*s3Blobs) error) error {
	start := int(f.current.Load())
	var err error
	for i := range f.stores {
		n := (start + i) % len(f.stores)
		if err = op(f.stores[n]); err == nil || errors.Is(err, ErrMissing) || errors.Is(err, errSize) || errors.Is(err, context.Canceled) {
			f.current.Store(int32(n))
			return err
		}
	}
	return err
}

func (f *failoverBlobs) Put(ctx context.Context, key string, data []byte) error {
	return f.try(func(b *s3Blobs) error { return b.Put(ctx, key, data) })
}

func (f *failoverBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := f.try(func(b *s3Blobs) (err error) { out, err = b.Get(ctx, key); return err })
	return out, err
}

func (f *failoverBlobs) getInto(ctx context.Context, key string, buf []byte) error {
	return f.try(func(b *s3Blobs) error { return b.getInto(ctx, key, buf) })
}

func (f *failoverBlobs) List(ctx context.Context, fn func(BlobInfo) error) error {
	return f.try(func(b *s3Blobs) error { return b.List(ctx, fn) })
}

func (f *failoverBlobs) Delete(ctx context.Context, key string) error {
	return f.try(func(b *s3Blobs) error { return b.Delete(ctx, key) })
}

// triesPerEndpoint is how often a request is tried on one endpoint of
// several: once, since the next endpoint is the better retry. minio-go's
// default backs off for seconds on a server that is down, which every
// chunk fetched meanwhile would wait out.
const triesPerEndpoint = 1

// newFailoverBlobs opens the bucket through every endpoint that answers now;
// one that is down at start is left out rather than stopping the daemon.
func newFailoverBlobs(ctx context.Context, sp s3Spec) (Blobs, error) {
	f := &failoverBlobs{}
	var firstErr error
	tries := 0
	if len(sp.endpoints) > 1 {
		tries = triesPerEndpoint
	}
	for _, ep := range sp.endpoints {
		b, err := newS3Blobs(ctx, "http://"+ep, sp.bucket, sp.keyID, sp.secret, sp.prefix, tries)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		f.stores = append(f.stores, b)
	}
	if len(f.stores) == 0 {
		return nil, firstErr
	}
	if len(f.stores) == 1 {
		return f.stores[0], nil
	}
	return f, nil
}
