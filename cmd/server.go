package cmd

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon"
)

func cmdServer() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run a sphere node (on its first start it bootstraps a single-node cluster, or joins one with --join)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: ".sphere/data", Usage: "where the node keeps its Raft log, snapshots, master key and audit log"},
			&cli.StringFlag{Name: "node-id", Value: "node1", Usage: "this node's id in the cluster"},
			&cli.StringFlag{Name: "raft-addr", Value: "127.0.0.1:7400", Usage: "HOST:PORT for Raft traffic; unauthenticated and unencrypted, so on a private network only"},
			&cli.StringFlag{Name: "raft-advertise", Usage: "HOST:PORT other nodes reach this node's Raft at, when not --raft-addr (NAT, a relay)"},
			&cli.StringFlag{Name: "api-addr", Usage: "HOST:PORT for the remote API (token-authenticated) and node-to-node calls; off when empty, needed in a cluster"},
			&cli.StringFlag{Name: "join", Usage: "on the first start, join the cluster of the node whose API is at HOST:PORT (needs copies of its master key and cluster secret files)"},
			&cli.StringFlag{Name: "cluster-secret-file", Usage: "the secret that authenticates nodes to each other (default DATA-DIR/cluster.secret, created 0600 unless --join)"},
			&cli.StringFlag{Name: "master-key-file", Usage: "the master key wrapping project data keys (default DATA-DIR/master.key, created 0600 on first start)"},
			&cli.StringFlag{Name: "audit-log", Usage: "JSON-lines audit log (default DATA-DIR/audit.log; - for none)"},
			&cli.StringSliceFlag{Name: "mount", Usage: "ORG/C/P=DIR: mount a project at start (repeatable)"},
			&cli.StringFlag{Name: "demo-mount", Usage: "on the first start, create a demo organization and mount its project at this directory"},
			&cli.StringFlag{Name: "blob-store", Usage: "where dataset chunks live: a local folder (default DATA-DIR/blobs) or s3://KEYID:SECRET@HOST:PORT[,HOST:PORT...]/BUCKET[/PREFIX], several nodes of one MinIO to fail over between", EnvVars: []string{"SPHERE_BLOB_STORE"}},
			&cli.StringFlag{Name: "cache-dir", Usage: "the local dataset chunk cache (default DATA-DIR/cache)"},
			&cli.StringFlag{Name: "cache-size", Value: "10G", Usage: "the chunk cache's size bound, e.g. 500M, 10G"},
			&cli.DurationFlag{Name: "s3-timeout", Value: 10 * time.Second, Usage: "bound on every S3 operation of a connector; past it the operation fails with EIO"},
			&cli.DurationFlag{Name: "sweep-every", Value: 24 * time.Hour, Usage: "how often the leader deletes the blobs no file references any more (0: only `sphere cluster sweep`)"},
			&cli.DurationFlag{Name: "sweep-grace", Value: 24 * time.Hour, Usage: "spare unreferenced blobs younger than this when sweeping by itself"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Action: server,
	}
}

func server(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	// Absolute, so the path printed for SPHERE_SOCKET works from anywhere.
	socket, err := filepath.Abs(c.String("socket"))
	if err != nil {
		return usagef("--socket: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usagef("--log-level: %v", err)
	}
	cfg := daemon.Config{
		DataDir:           c.String("data-dir"),
		Socket:            socket,
		NodeID:            c.String("node-id"),
		RaftAddr:          c.String("raft-addr"),
		RaftAdvertise:     c.String("raft-advertise"),
		APIAddr:           c.String("api-addr"),
		MasterKeyFile:     c.String("master-key-file"),
		ClusterSecretFile: c.String("cluster-secret-file"),
		Join:              c.String("join"),
		AuditLog:          c.String("audit-log"),
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	for _, m := range c.StringSlice("mount") {
		project, dir, ok := strings.Cut(m, "=")
		if !ok || project == "" || dir == "" {
			return usagef("--mount takes ORG/C/P=DIR, not %q", m)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return usagef("--mount %s: %v", m, err)
		}
		cfg.Mounts = append(cfg.Mounts, daemon.MountSpec{Project: project, Dir: abs})
	}
	cfg.BlobStore, cfg.CacheDir, cfg.S3Timeout = c.String("blob-store"), c.String("cache-dir"), c.Duration("s3-timeout")
	if cfg.S3Timeout <= 0 {
		return usagef("--s3-timeout must be positive")
	}
	cfg.SweepEvery, cfg.SweepGrace = c.Duration("sweep-every"), c.Duration("sweep-grace")
	if cfg.SweepEvery < 0 || cfg.SweepGrace < 0 {
		return usagef("--sweep-every and --sweep-grace must not be negative")
	}
	if cfg.CacheBytes, err = parseSize(c.String("cache-size")); err != nil {
		return usagef("--cache-size: %v", err)
	}
	if dm := c.String("demo-mount"); dm != "" {
		abs, err := filepath.Abs(dm)
		if err != nil {
			return usagef("--demo-mount: %v", err)
		}
		cfg.DemoMount = abs
	}
	// Catch signals before starting, so a SIGTERM during start-up still
	// shuts down cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	d, err := daemon.Start(c.Context, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sphere: node %s serving; socket %s (export SPHERE_SOCKET=%s)\n", cfg.NodeID, cfg.Socket, cfg.Socket)
	sig := <-sigs
	cfg.Logger.Info("shutting down", "signal", sig.String())
	return d.Close()
}
