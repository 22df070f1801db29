package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// The datasets section compares sphere's sealed datasets, whose chunks
// live in a blob store on this run's MinIO, with direct minio-go (cold
// reads) and with go-fuse's loopback over the same files on local disk
// (cached reads, listing, stat).
//
// The files are the bucket's big object and listed objects, written to a
// local folder laid out like the bucket (big/object.bin, ls/object-NNNNN)
// and uploaded from there as the sealed datasets "big" and "ls". So the
// mount's datasets/ folder, the loopback's mount point and the bucket
// all hold the same paths, and the peers' own methods measure them.

// datasetRow is one row of the datasets table: sphere's figure, the
// reference's, and the target for their ratio (or for sphere's figure).
type datasetRow struct {
	title   string
	unit    string
	rate    bool // more is better
	sphere  result
	refName string
	ref     result
	target  string
	met     func(sphere, ref float64) bool
}

// benchDatasets creates the datasets in s and measures them. The cold read
// restarts s with an empty chunk cache first.
func benchDatasets(ctx context.Context, c *cleanups, e *env, s *sphere) ([]datasetRow, error) {
	local := filepath.Join(e.work, "local")
	if err := e.createLocal(local); err != nil {
		return nil, err
	}
	for _, name := range []string{"big", "ls"} {
		start := time.Now()
		say("uploading %s into the dataset %s and sealing it", filepath.Join(local, name), name)
		if _, err := s.run(ctx, nil, "dataset", "create", sphereProject, name, "--from", filepath.Join(local, name)); err != nil {
			return nil, err
		}
		if _, err := s.run(ctx, nil, "dataset", "seal", sphereProject, name); err != nil {
			return nil, err
		}
		say("  dataset %s uploaded and sealed in %v", name, time.Since(start).Round(time.Millisecond))
	}
	loop, err := mountLoopback(ctx, c, e, local)
	if err != nil {
		return nil, err
	}
	sp := &mountPeer{label: "sphere datasets", e: e, dir: filepath.Join(s.mnt, "datasets")}
	lp := &mountPeer{label: "go-fuse loopback", e: e, dir: loop}
	direct := &directPeer{e}

	say("restarting sphere with an empty chunk cache")
	if err := s.restartCold(ctx, filepath.Join(sp.dir, bigKey)); err != nil {
		return nil, err
	}
	gib := func(d time.Duration) float64 { return float64(e.o.bigSize) / (1 << 30) / d.Seconds() }
	secs := func(d time.Duration) float64 { return d.Seconds() }
	stats := func(d time.Duration) float64 { return float64(e.o.listCount) / d.Seconds() }
	atLeast := func(share float64) func(s, r float64) bool { return func(s, r float64) bool { return s >= share*r } }

	// Each measurement starts from a dropped page cache, except stat,
	// which measures what the kernel keeps.
	cold := func(label string, run func(context.Context) (time.Duration, error), figure func(time.Duration) float64) result {
		e.cold()
		return e.take(ctx, label, run, figure)
	}
	coldSphere := cold("sphere: cold read", sp.seqRead, gib)
	coldDirect := cold("direct minio-go: GetObject", direct.seqRead, gib)
	loopRead := cold("loopback: read", lp.seqRead, gib)
	// The first open after the cold read finds every chunk cached and
	// builds the local copy the kernel then reads (passthrough); the next
	// open finds that copy.
	warmFirst := cold("sphere: warm read, first open", sp.seqRead, gib)
	warm := cold("sphere: warm read", sp.seqRead, gib)
	lsSphere := cold("sphere: ls -l", sp.list, secs)
	lsLoop := cold("loopback: ls -l", lp.list, secs)
	statSphere := e.take(ctx, "sphere: stat by path", sp.statAll, stats)
	statLoop := e.take(ctx, "loopback: stat by path", lp.statAll, stats)
	statInSphere := e.take(ctx, "sphere: stat in the folder", sp.statIn, stats)
	statInLoop := e.take(ctx, "loopback: stat in the folder", lp.statIn, stats)
	rows := []datasetRow{
		{title: "cold read, big file, empty chunk cache", unit: "GiB/s", rate: true, sphere: coldSphere,
			refName: direct.name(), ref: coldDirect, target: "≥ 85% of direct", met: atLeast(0.85)},
		{title: "warm read, big file, first open (builds local copy)", unit: "GiB/s", rate: true, sphere: warmFirst,
			refName: lp.name(), ref: loopRead, target: "≥ 80% of loopback", met: atLeast(0.8)},
		{title: "warm read, big file, local copy kept", unit: "GiB/s", rate: true, sphere: warm,
			refName: lp.name(), ref: loopRead, target: "≥ 80% of loopback", met: atLeast(0.8)},
		{title: fmt.Sprintf("ls -l, %d files", e.o.listCount), unit: "s", sphere: lsSphere,
			refName: lp.name(), ref: lsLoop, target: "≤ 1.2× loopback", met: func(s, r float64) bool { return s <= 1.2*r }},
		{title: fmt.Sprintf("cached stat in the folder, %d files", e.o.listCount), unit: "stats/s", rate: true, sphere: statInSphere,
			refName: lp.name(), ref: statInLoop, target: "≥ 100,000/s", met: atLeastRate(100_000)},
		// A walk from outside the dataset passes its gate, which decides
		// each caller anew: one FUSE round trip, whatever is cached.
		{title: fmt.Sprintf("cached stat by path from the mount's root, %d files", e.o.listCount), unit: "stats/s", rate: true, sphere: statSphere,
			refName: lp.name(), ref: statLoop, target: "≥ 100,000/s", met: atLeastRate(100_000)},
	}
	return rows, ctx.Err()
}

// take runs one measurement and turns its time into a figure, reporting
// progress; a failure is kept in the result.
func (e *env) take(ctx context.Context, label string, run func(context.Context) (time.Duration, error), figure func(time.Duration) float64) result {
	if ctx.Err() != nil {
		return result{err: ctx.Err()}
	}
	say("%s", label)
	d, err := run(ctx)
	if err != nil {
		say("  failed: %v", err)
		return result{err: err}
	}
	say("  %.4g (%v)", figure(d), d.Round(time.Millisecond))
	return result{value: figure(d)}
}

// createLocal writes the big object's and the listed objects' content
// under dir, at the keys they have in the bucket.
func (e *env) createLocal(dir string) error {
	say("writing the big object and %d listed objects under %s", e.o.listCount, dir)
	for _, d := range []string{filepath.Dir(bigKey), listPrefix} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, bigKey))
	if err != nil {
		return err
	}
	_, err = io.Copy(f, e.bigContent())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for i := range e.o.listCount {
		if err := os.WriteFile(filepath.Join(dir, listKey(i)), listContent, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// statAll stats each listed file once by its path, in-process, after one
// pass that fills whatever the kernel keeps, and times the second pass.
func (p *mountPeer) statAll(ctx context.Context) (time.Duration, error) {
	paths := make([]string, p.e.o.listCount)
	for i := range paths {
		paths[i] = filepath.Join(p.dir, listKey(i))
	}
	pass := func() error {
		for _, path := range paths {
			if _, err := os.Stat(path); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	if err := pass(); err != nil {
		return 0, err
	}
	start := time.Now()
	err := pass()
	return time.Since(start), err
}

// atLeastRate is a target on sphere's figure alone.
func atLeastRate(floor float64) func(s, r float64) bool {
	return func(s, _ float64) bool { return s >= floor }
}

// statIn stats each listed file by its name relative to the open folder
// (fstatat), as ls -l, find and os.scandir do: only what is below the
// folder is walked. One pass fills what the kernel keeps; the second is
// timed.
func (p *mountPeer) statIn(ctx context.Context) (time.Duration, error) {
	dir, err := os.Open(filepath.Join(p.dir, listPrefix))
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	names := make([]string, p.e.o.listCount)
	for i := range names {
		names[i] = filepath.Base(listKey(i))
	}
	pass := func() error {
		var st unix.Stat_t
		for _, name := range names {
			if err := unix.Fstatat(int(dir.Fd()), name, &st, 0); err != nil {
				return fmt.Errorf("stat %s in %s: %w", name, dir.Name(), err)
			}
		}
		return ctx.Err()
	}
	if err := pass(); err != nil {
		return 0, err
	}
	start := time.Now()
	err = pass()
	return time.Since(start), err
}

// printDatasets prints the datasets table: each figure with its ratio to
// the reference and the target that ratio (or figure) must meet.
func printDatasets(out io.Writer, e *env, rows []datasetRow) {
	fmt.Fprintf(out, "\nspherebench datasets: sealed, chunks in MinIO (--blob-store s3://…/%s), big file %d MiB, %d small files\n",
		blobBucket, e.o.bigSize>>20, e.o.listCount)
	fmt.Fprintln(out, "ratios: for rates, sphere's figure as a share of the reference's; for times, how many times the reference's")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "work\tsphere\treference\tratio\ttarget\t")
	for _, r := range rows {
		ratio, verdict := "-", "-"
		if r.sphere.err == nil && r.ref.err == nil && r.ref.value != 0 {
			if r.rate {
				ratio = fmt.Sprintf("%.0f%%", 100*r.sphere.value/r.ref.value)
			} else {
				ratio = fmt.Sprintf("%.2f×", r.sphere.value/r.ref.value)
			}
			verdict = "met"
			if !r.met(r.sphere.value, r.ref.value) {
				verdict = "MISSED"
			}
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s %s\t%s\t%s %s\t\n", r.title, r.unit, r.sphere.String(), r.refName, r.ref.String(), ratio, r.target, verdict)
	}
	tw.Flush()
	for _, r := range rows {
		for _, c := range []struct {
			who string
			res result
		}{{"sphere", r.sphere}, {r.refName, r.ref}} {
			if c.res.err != nil {
				fmt.Fprintf(out, "%s, %s: %v\n", c.who, r.title, c.res.err)
			}
		}
	}
}
