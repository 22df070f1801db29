// Package daemon is sphere's server: it runs a cluster node, answers the
// local and remote API, and owns the node's FUSE mounts.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/audit"
	"github.com/sphere-sandbox/sphere/daemon/keyring"
	"github.com/sphere-sandbox/sphere/policy"
)

// Config is what `sphere server` is started with.
type Config struct {
	DataDir       string
	Socket        string
	NodeID        string
	RaftAddr      string
	APIAddr       string // "" disables the remote API listener
	MasterKeyFile string // default DataDir/master.key
	AuditLog      string // default DataDir/audit.log; "-" disables
	Mounts        []MountSpec
	DemoMount     string // on first start, create a demo project and mount it here
	Logger        *slog.Logger
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
)

// Daemon is a running sphere server.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	node    *cluster.Node
	master  *keyring.Master
	audit   *audit.Log
	methods map[string]handlerFunc

	servers []*http.Server
	mounts  *mountTable

	closeOnce sync.Once
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
	if d.master, err = loadMaster(cfg.MasterKeyFile, firstStart); err != nil {
		return nil, err
	}
	auditPath := cfg.AuditLog
	if auditPath == "-" {
		auditPath = ""
	}
	if d.audit, err = audit.Open(auditPath); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	d.mounts = newMountTable(d)
	d.node, err = cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr,
		Bootstrap: true, Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.node.WaitLeader(wait); err != nil {
		return nil, err
	}
	if err := d.checkMasterKey(ctx); err != nil {
		return nil, err
	}
	d.methods = d.routes()
	l, err := listenUnix(cfg.Socket)
	if err != nil {
		return nil, err
	}
	d.serve(l)
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
		if d.mounts != nil {
			d.mounts.closeAll()
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

// propose commits a command as the caller and returns its result.
func (d *Daemon) propose(ctx context.Context, c caller, t cluster.CommandType, payload any) (policy.ID, error) {
	cmd, err := cluster.NewCommand(t, c.Principal, payload)
	if err != nil {
		return 0, err
	}
	resp, err := d.node.Propose(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return resp.ID, resp.Err()
}
