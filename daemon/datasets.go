package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/daemon/datastore"
	"github.com/sphere-sandbox/sphere/policy"
)

func (d *Daemon) datasetCreate(ctx context.Context, c caller, req api.DatasetCreateReq) (any, error) {
	if req.SizeLimit < 0 {
		return nil, cluster.Errorf(cluster.CodeInvalid, "--size must not be negative")
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	var project policy.ID
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var p *cluster.Entity
		if p, err = d.resolve(s, c, "project:"+req.Project); err == nil {
			project = p.ID
		}
	})
	if err != nil {
		return nil, err
	}
	id, err := d.createDataset(ctx, c.Principal, project, req.Name, req.Description, req.SizeLimit)
	if err != nil {
		return nil, err
	}
	return d.entityByID(c, id)
}

// createDataset creates an empty, initializing dataset as principal p: the
// CLI's `dataset create` and the mount's `mkdir datasets/NAME` alike.
func (d *Daemon) createDataset(ctx context.Context, p, project policy.ID, name, description string, limit int64) (policy.ID, error) {
	if err := cluster.ValidateName(name); err != nil {
		return 0, err
	}
	settings := map[string]string{cluster.SettingState: cluster.StateInitializing}
	if limit > 0 {
		settings[cluster.SettingSizeLimit] = strconv.FormatInt(limit, 10)
	}
	return d.propose(ctx, caller{Principal: p}, cluster.CmdCreate, cluster.Create{
		Kind: policy.KindResource, Type: cluster.TypeDataset, Parent: project, Name: name,
		Description: description, Settings: settings,
	})
}

func (d *Daemon) datasetSeal(ctx context.Context, c caller, req api.RefReq) (any, error) {
	e, err := d.lookup(c, req.Ref)
	if err != nil {
		return nil, err
	}
	if !cluster.HoldsFiles(e.Type) {
		return nil, cluster.Errorf(cluster.CodeInvalid, "%s is not a dataset or a model", req.Ref)
	}
	if _, err := d.propose(ctx, c, cluster.CmdDatasetSeal, cluster.DatasetSeal{Dataset: e.ID}); err != nil {
		return nil, err
	}
	return d.entityByID(c, e.ID)
}

// serveUpload stores one file streamed as the request body into an
// initializing dataset (or model): chunked and uploaded to the blob store
// as it arrives, then recorded in Raft as the caller.
func (d *Daemon) serveUpload(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	e, err := d.lookup(c, q.Get("dataset"))
	if err == nil && !cluster.HoldsFiles(e.Type) {
		err = cluster.Errorf(cluster.CodeInvalid, "%s is not a dataset or a model", q.Get("dataset"))
	}
	path := q.Get("path")
	if err == nil {
		err = cluster.ValidateDatasetPath(path)
	}
	mtime := time.Now().UTC()
	if ns, perr := strconv.ParseInt(q.Get("mtime"), 10, 64); perr == nil {
		mtime = time.Unix(0, ns).UTC()
	}
	if err == nil {
		err = d.checkWritable(c.Principal, e.ID, r.ContentLength)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	chunks, size, err := d.storeContent(r.Context(), r.Body)
	if err == nil {
		err = d.commitFile(r.Context(), c.Principal, e.ID, path, mtime, chunks, size)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct {
		Path string `json:"path"`
		Size int64  `json:"size"`
	}{path, size})
}

// checkWritable fails early, before any byte is uploaded, when the caller
// may not write the dataset or the file cannot fit; the state machine
// decides again when the file is recorded.
func (d *Daemon) checkWritable(p, dataset policy.ID, size int64) error {
	if dec := d.decide(p, policy.ActEditResource, policy.Target{ID: dataset}); !dec.Allowed {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: writing a dataset needs %s", dec.Missing)
	}
	sealed, free, rule := d.datasetSpace(dataset)
	if sealed {
		return cluster.Errorf(cluster.CodeReadOnly, "the dataset is sealed: read-only and immutable")
	}
	if free >= 0 && size > free {
		return cluster.Errorf(cluster.CodeNoSpace, "%d bytes do not fit: %d bytes are left under %s", size, free, rule)
	}
	return nil
}

// datasetSpace reports whether a dataset is sealed and how many bytes are
// left under its size limit and its project's storage limit (-1: no
// limit), and which limit that is.
func (d *Daemon) datasetSpace(dataset policy.ID) (sealed bool, free int64, rule string) {
	free = -1
	d.node.FSM().Read(func(s *cluster.State) {
		if e, ok := s.Entities[dataset]; ok {
			sealed = e.Settings[cluster.SettingState] == cluster.StateSealed
			free, rule = s.SpaceLeft(dataset)
		}
	})
	return sealed, free, rule
}

func (d *Daemon) storeContent(ctx context.Context, r io.Reader) ([]cluster.Chunk, int64, error) {
	// Chunks files already hold are named again, not uploaded; new ones
	// go in the current generation (cluster/sweep.go). Only where every
	// node reads the same blob store: a node with a local folder of its
	// own has not got the blobs other nodes wrote.
	local := d.data.Local()
	gen := datastore.Generation{Referenced: func(hash string) (g uint64, ok bool) {
		d.node.FSM().Read(func(s *cluster.State) {
			if !local || len(s.Members) <= 1 {
				g, ok = s.ReferencedGen(hash)
			}
		})
		return g, ok
	}}
	d.node.FSM().Read(func(s *cluster.State) { gen.Current = s.Sweep.Epoch })
	w := d.data.NewWriter(ctx, gen)
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return nil, 0, fmt.Errorf("store file content: %w", err)
	}
	refs, size, err := w.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("store file content: %w", err)
	}
	return toChunks(refs), size, nil
}

func toChunks(refs []datastore.ChunkRef) []cluster.Chunk {
	out := make([]cluster.Chunk, len(refs))
	for i, r := range refs {
		out[i] = cluster.Chunk{Hash: r.Hash, Size: r.Size, Gen: r.Gen}
	}
	return out
}

func toRefs(chunks []cluster.Chunk) []datastore.ChunkRef {
	out := make([]datastore.ChunkRef, len(chunks))
	for i, c := range chunks {
		out[i] = datastore.ChunkRef{Hash: c.Hash, Size: c.Size, Gen: c.Gen}
	}
	return out
}

func (d *Daemon) commitFile(ctx context.Context, p, dataset policy.ID, path string, mtime time.Time, chunks []cluster.Chunk, size int64) error {
	_, err := d.propose(ctx, caller{Principal: p}, cluster.CmdDatasetPut, cluster.DatasetPut{
		Dataset: dataset, Files: []cluster.PutFile{{Path: path, Size: size, MTime: mtime, Chunks: chunks}},
	})
	return err
}

// openDatastore opens the blob store and local cache datasets are read from.
func openDatastore(ctx context.Context, cfg Config) (*datastore.Store, error) {
	spec := cfg.BlobStore
	if spec == "" {
		spec = filepath.Join(cfg.DataDir, "blobs")
	}
	blobs, err := datastore.ParseBlobStore(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("--blob-store: %w", err)
	}
	// Writes through a mount are spooled here until they are committed.
	if err := os.MkdirAll(spoolDir(cfg.DataDir), 0o700); err != nil {
		return nil, fmt.Errorf("create the write spool: %w", err)
	}
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	return datastore.New(blobs, datastore.Options{CacheDir: cacheDir, CacheBytes: cfg.CacheBytes, Logger: cfg.Logger})
}

// spoolDir holds the files a mount's writers are writing, until commit.
func spoolDir(dataDir string) string { return filepath.Join(dataDir, "spool") }
