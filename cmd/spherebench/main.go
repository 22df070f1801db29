// Command spherebench measures, in one run and on the same data, how fast
// an S3 bucket is to use through several clients (SPEC §12): direct
// minio-go (the reference), sphere's s3mount package in-process, s3fs-fuse,
// rclone mount and a sphere mount. It prints each figure with its ratio to
// direct minio-go.
//
// It starts its own single-drive MinIO on 127.0.0.1 and creates the data:
// a 1 GiB object of random bytes, 10,000 small objects under one prefix,
// and 1,000 objects of 4 KiB. It starts its own sphere daemon (--sphere)
// with a project whose S3 connector shows the bucket in its mount.
//
// A second table compares sphere's sealed datasets, their chunks in a
// blob store on the same MinIO, holding the same 1 GiB file and 10,000
// small files: cold reads against direct minio-go, cached reads, ls -l
// and stat against go-fuse's loopback over the same files on local disk,
// each ratio next to its target.
//
// Every cold measurement first drops the page cache (echo 3 >
// /proc/sys/vm/drop_caches; needs root). Everything it starts or mounts is
// stopped and unmounted on exit, also after an error or Ctrl-C.
//
// Usage:
//
//	go run ./cmd/spherebench [--sphere BIN] [--peers s3fs,rclone] [--big-size 1GiB]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.peers, "peers", "s3fs,rclone", "FUSE peers to compare, comma-separated (s3fs, rclone); empty for none")
	flag.Int64Var(&o.bigSize, "big-size", 1<<30, "size in bytes of the object read and written sequentially")
	flag.IntVar(&o.listCount, "list-count", 10_000, "objects under the listed prefix, and files in the listed dataset")
	flag.IntVar(&o.catCount, "cat-count", 1_000, "4 KiB objects read one cat each")
	flag.StringVar(&o.minioBin, "minio-bin", "", "MinIO server binary (default: $SPHERE_MINIO_BIN or scripts/minio.sh path)")
	flag.StringVar(&o.sphereBin, "sphere", "", "the sphere binary to run as the daemon and CLI (default: bin/sphere if present, else ./cmd/sphere built into the work directory)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		slog.Error("spherebench failed", "err", err)
		stop()
		os.Exit(1) // the deferred clean-up in run has already happened
	}
}

type options struct {
	peers     string
	bigSize   int64
	listCount int
	catCount  int
	minioBin  string
	sphereBin string
}

func run(ctx context.Context, o options) (err error) {
	var c cleanups
	defer func() { c.run() }()

	env, err := startEnv(ctx, &c, o)
	if err != nil {
		return err
	}
	defer printWarnings(os.Stdout, env)
	if err := env.createData(ctx); err != nil {
		return err
	}

	peers := []peer{&directPeer{env}, &s3mountPeer{env: env}}
	for _, name := range strings.Split(o.peers, ",") {
		var p peer
		switch strings.TrimSpace(name) {
		case "":
			continue
		case "s3fs":
			p, err = mountS3fs(ctx, &c, env)
		case "rclone":
			p, err = mountRclone(ctx, &c, env)
		default:
			return fmt.Errorf("--peers: unknown peer %q (want s3fs or rclone)", name)
		}
		if err != nil {
			return err
		}
		peers = append(peers, p)
	}
	sph, err := startSphere(ctx, &c, env)
	if err != nil {
		return err
	}
	peers = append(peers, &mountPeer{label: "sphere mount", e: env, dir: sph.bucketDir()})

	results, err := measure(ctx, env, peers)
	if err != nil {
		return err
	}
	printTable(os.Stdout, env, peers, results)

	rows, err := benchDatasets(ctx, &c, env, sph)
	if err != nil {
		return err
	}
	printDatasets(os.Stdout, env, rows)
	return nil
}

// cleanups run in reverse order of registration, like defers, but are
// collected as things get started.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// say reports progress on stderr, keeping stdout for the table.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "spherebench: "+format+"\n", args...)
}
