package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/datastore"
)

// mapSweeper is a blob store in memory whose Delete fails for one key.
type mapSweeper struct {
	mu      sync.Mutex
	blobs   map[string]bool
	failing string
}

func (m *mapSweeper) List(context.Context, func(datastore.BlobInfo) error) error { return nil }

func (m *mapSweeper) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if key == m.failing {
		return errors.New("disk on fire")
	}
	delete(m.blobs, key)
	return nil
}

func TestDeleteBlobs(t *testing.T) {
	var blobs []cluster.Blob
	store := &mapSweeper{blobs: map[string]bool{}}
	for i := range 100 {
		b := cluster.Blob{Hash: fmt.Sprintf("%064x", i), Gen: uint64(i % 3)}
		blobs = append(blobs, b)
		store.blobs[datastore.BlobKey(b.Hash, b.Gen)] = true
	}
	var deleted []cluster.Blob
	if err := deleteBlobs(context.Background(), store, blobs, func(b cluster.Blob) { deleted = append(deleted, b) }); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != len(blobs) || len(store.blobs) != 0 {
		t.Fatalf("deleted %d of %d, %d left", len(deleted), len(blobs), len(store.blobs))
	}

	store.failing = datastore.BlobKey(blobs[10].Hash, blobs[10].Gen)
	deleted = nil
	err := deleteBlobs(context.Background(), store, blobs, func(b cluster.Blob) { deleted = append(deleted, b) })
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("a failing delete: %v", err)
	}
	if len(deleted) == len(blobs) {
		t.Errorf("the failed blob was counted as deleted")
	}
}
