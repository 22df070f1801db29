// Package daemon is sphere's server: it runs a cluster node, answers the
// local and remote API, and owns the node's FUSE mounts.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/audit"
	"github.com/sphere-sandbox/sphere/daemon/datastore"
	"github.com/sphere-sandbox/sphere/daemon/keyring"
	"github.com/sphere-sandbox/sphere/policy"
)

// Config is what `sphere server` is started with.
type Config struct {
	DataDir       string
	Socket        string
	NodeID        string
	RaftAddr      string
	RaftAdvertise string // the Raft address other nodes dial; default RaftAddr
	APIAddr       string // "" disables the remote API listener
	MasterKeyFile string // default DataDir/master.key
	// ClusterSecretFile authenticates node-to-node calls; default
	// DataDir/cluster.secret, created on a node that does not join.
	ClusterSecretFile string
	// Join is the API address of a node of the cluster to join on the
	// first start; a node with Raft state already knows its cluster.
	Join      string
	AuditLog  string // default DataDir/audit.log; "-" disables
	Mounts    []MountSpec
	DemoMount string // on first start, create a demo project and mount it here
	// BlobStore is where dataset chunks live: a local folder (default
	// DataDir/blobs) or s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX], so any
	// node of a cluster serves any dataset.
	BlobStore string
	// CacheDir and CacheBytes are the local, size-bounded chunk cache.
	CacheDir   string
	CacheBytes int64
	// S3Timeout bounds every S3 operation of a connector: a stalled or
	// dead MinIO turns into EIO within it, never a hung process.
	S3Timeout time.Duration
	// SweepEvery is how often the leader sweeps unreferenced blobs out of
	// the blob store (0: never by itself), sparing those younger than
	// SweepGrace (daemon/sweep.go).
	SweepEvery, SweepGrace time.Duration
	Logger                 *slog.Logger
}

// MountSpec is a project to mount at start: ORG/C/P=DIR.
type MountSpec struct {
	Project string
	Dir     string
}

// The daemon's error values.
var (
	// ErrMasterKey stops the daemon: it never serves secrets it cannot
	// decrypt, nor invents a new key for a cluster that has one.
	ErrMasterKey = errors.New("master key")
	// ErrClusterSecret stops a node that cannot authenticate to the
	// others, and refuses a caller that does not present the secret.
	ErrClusterSecret = errors.New("cluster secret")
	// ErrNoLeader is a write or linearizable read this node could not get
	// to a leader: it is cut off from a majority, or the majority is down.
	ErrNoLeader = errors.New("no leader")
	// errInactive is a connector that is not activated: its folder is
	// absent from mounts.
	errInactive = errors.New("connector is not activated")
)

// Daemon is a running sphere server.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	node    *cluster.Node
	master  *keyring.Master
	link    *clusterLink
	audit   *audit.Log
	methods map[string]handlerFunc

	servers []*http.Server
	mounts  *mountTable
	buckets *bucketCache
	data    *datastore.Store

	stopSweeps context.CancelFunc // nil unless the node sweeps by itself
	sweeps     sync.WaitGroup
	closeOnce  sync.Once
}

// Start opens the node, checks the master key, starts the API and restores
// mounts. The daemon runs until Close.
func Start(ctx context.Context, cfg Config) (d *Daemon, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
	}
	if cfg.AuditLog == "" {
		cfg.AuditLog = filepath.Join(cfg.DataDir, "audit.log")
	}
	if cfg.ClusterSecretFile == "" {
		cfg.ClusterSecretFile = filepath.Join(cfg.DataDir, "cluster.secret")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	d = &Daemon{cfg: cfg, log: cfg.Logger}
	started := d // the return value is nil on failure; close what was opened
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	firstStart := !cluster.HasState(cfg.DataDir)
	// A joining node copies the cluster's keys; it never mints its own.
	joining := firstStart && cfg.Join != ""
	if joining {
		if cfg.APIAddr == "" {
			return nil, fmt.Errorf("--join needs --api-addr: the other nodes forward writes and reads to it")
		}
		if _, err := os.Stat(cfg.MasterKeyFile); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing: a node joining a cluster needs a copy of the cluster's master key file (--master-key-file)", ErrMasterKey, cfg.MasterKeyFile)
		}
	}
	if d.master, err = loadMaster(cfg.MasterKeyFile, firstStart && !joining); err != nil {
		return nil, err
	}
	secret, err := loadClusterSecret(cfg.ClusterSecretFile, cfg.Join == "")
	if err != nil {
		return nil, err
	}
	d.link = newClusterLink(secret)
	auditPath := cfg.AuditLog
	if auditPath == "-" {
		auditPath = ""
	}
	if d.audit, err = audit.Open(auditPath); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	d.mounts = newMountTable(d)
	d.buckets = &bucketCache{d: d, m: map[policy.ID]cachedBucket{}}
	if d.data, err = openDatastore(ctx, cfg); err != nil {
		return nil, err
	}
	d.node, err = cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, Advertise: cfg.RaftAdvertise,
		Bootstrap: cfg.Join == "", Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	if joining {
		if err := d.joinVia(ctx, cfg.Join); err != nil {
			return nil, err
		}
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.node.WaitLeader(wait); err != nil {
		return nil, err
	}
	// Catch up before looking at the state: a restarted or new follower
	// knows a leader before it has the entries that leader committed.
	if err := d.linearize(wait); err != nil {
		return nil, fmt.Errorf("catch up with the cluster: %w", err)
	}
	if err := d.checkMasterKey(ctx); err != nil {
		return nil, err
	}
	if err := d.register(ctx); err != nil {
		return nil, fmt.Errorf("register this node: %w", err)
	}
	d.methods = d.routes()
	for name, h := range d.clusterRoutes() {
		d.methods[name] = h
	}
	// Bound now, so a second daemon on the same socket fails at once; served
	// last, so a caller who gets an answer finds the mounts in place.
	local, err := listenUnix(cfg.Socket)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			local.Close()
		}
	}()
	if cfg.APIAddr != "" {
		tl, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			return nil, fmt.Errorf("listen for the API on %s: %w", cfg.APIAddr, err)
		}
		d.serve(tl)
	}
	if firstStart && cfg.DemoMount != "" {
		if err := d.createDemo(ctx); err != nil {
			return nil, fmt.Errorf("create demo: %w", err)
		}
	}
	if err := d.mounts.restore(ctx, cfg.Mounts); err != nil {
		return nil, err
	}
	d.serve(local)
	d.startSweeps()
	d.log.Info("sphere is serving", "socket", cfg.Socket, "node", cfg.NodeID, "raft", cfg.RaftAddr, "first_start", firstStart)
	return d, nil
}

func (d *Daemon) serve(l net.Listener) {
	srv := newHTTPServer(d.serveHTTP, d.log)
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("API listener stopped", "addr", l.Addr(), "err", err)
		}
	}()
}

// loadMaster loads the master key, creating it only on a first start: a
// restart without the key must stop, not begin a new key the stored secrets
// were not sealed with.
func loadMaster(path string, firstStart bool) (*keyring.Master, error) {
	m, err := keyring.LoadMaster(path)
	if err == nil {
		return m, nil
	}
	if errors.Is(err, keyring.ErrNoMasterKey) && firstStart {
		return keyring.CreateMaster(path)
	}
	if errors.Is(err, keyring.ErrNoMasterKey) {
		return nil, fmt.Errorf("%w: %s is missing, and this data directory holds secrets sealed with it; restore the key file (or pass --master-key-file)", ErrMasterKey, path)
	}
	return nil, fmt.Errorf("%w: %v", ErrMasterKey, err)
}

// checkMasterKey records the key's check value at bootstrap and verifies it
// on every later start.
func (d *Daemon) checkMasterKey(ctx context.Context) error {
	if d.node.IsLeader() {
		if err := d.node.Barrier(30 * time.Second); err != nil {
			return fmt.Errorf("replay the log: %w", err)
		}
	}
	var check []byte
	d.node.FSM().Read(func(s *cluster.State) { check = s.KeyCheck })
	if check != nil {
		if err := d.master.Verify(check); err != nil {
			return fmt.Errorf("%w: %s is not the key this cluster's secrets were sealed with: %v", ErrMasterKey, d.cfg.MasterKeyFile, err)
		}
		return nil
	}
	value, err := d.master.CheckValue()
	if err != nil {
		return err
	}
	_, err = d.propose(ctx, caller{Principal: policy.Bootstrap}, cluster.CmdBootstrap, cluster.Bootstrap{KeyCheck: value})
	return err
}

// Close unmounts, stops the API and the node. Committed writes are on disk
// already; Close only makes the shutdown tidy.
func (d *Daemon) Close() error {
	var err error
	d.closeOnce.Do(func() {
		if d.stopSweeps != nil {
			d.stopSweeps()
			d.sweeps.Wait()
		}
		if d.mounts != nil {
			d.mounts.closeAll()
		}
		if d.buckets != nil {
			d.buckets.closeAll()
		}
		if d.data != nil {
			_ = d.data.Close()
		}
		for _, s := range d.servers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.Shutdown(ctx)
			cancel()
		}
		if d.node != nil {
			err = d.node.Close()
		}
		if d.audit != nil {
			_ = d.audit.Close()
		}
		if d.cfg.Socket != "" {
			_ = os.Remove(d.cfg.Socket)
		}
	})
	return err
}

// propose commits a command as the caller, through the leader wherever it
// is, and returns its result.
func (d *Daemon) propose(ctx context.Context, c caller, t cluster.CommandType, payload any) (policy.ID, error) {
	cmd, err := cluster.NewCommand(t, c.Principal, payload)
	if err != nil {
		return 0, err
	}
	// One id for all attempts to commit it, here or at the leader.
	cmd.Request = rand.Text()
	resp, err := d.commit(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return resp.ID, resp.Err()
}
