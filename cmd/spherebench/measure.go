package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// A work is one row of the table.
type work struct {
	title string
	// run does the work once on a peer.
	run func(peer, context.Context) (time.Duration, error)
	// figure turns the time taken into the number shown, and says
	// whether more is better (a rate) or worse (a time).
	figure func(e *env, d time.Duration) float64
	unit   string
	rate   bool
}

func works() []work {
	gib := func(e *env, d time.Duration) float64 { return float64(e.o.bigSize) / (1 << 30) / d.Seconds() }
	return []work{
		{title: "cold sequential read, big object", run: peer.seqRead, figure: gib, unit: "GiB/s", rate: true},
		{title: "ls -l of the listed prefix", run: peer.list,
			figure: func(_ *env, d time.Duration) float64 { return d.Seconds() }, unit: "s"},
		{title: "read 4 KiB files, one cat each", run: peer.catAll,
			figure: func(e *env, d time.Duration) float64 { return float64(e.o.catCount) / d.Seconds() }, unit: "files/s", rate: true},
		{title: "sequential write, big file", run: peer.write, figure: gib, unit: "GiB/s", rate: true},
	}
}

// result is one cell: a figure, or why there is none.
type result struct {
	value float64
	err   error
}

// String is the figure, to three significant digits below 1,000 and
// whole above, or "failed".
func (r result) String() string {
	switch {
	case r.err != nil:
		return "failed"
	case r.value >= 1000:
		return fmt.Sprintf("%.0f", r.value)
	default:
		return fmt.Sprintf("%.3g", r.value)
	}
}

// measure runs every work on every peer, each from a cold cache. A peer
// failing a work gets an error in its cell; the run goes on.
func measure(ctx context.Context, e *env, peers []peer) ([][]result, error) {
	ws := works()
	results := make([][]result, len(ws))
	for i, w := range ws {
		results[i] = make([]result, len(peers))
		for j, p := range peers {
			e.cold()
			say("%s: %s", p.name(), w.title)
			d, err := w.run(p, ctx)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				say("  failed: %v", err)
				results[i][j] = result{err: err}
				continue
			}
			results[i][j] = result{value: w.figure(e, d)}
			say("  %.3f %s (%v)", results[i][j].value, w.unit, d.Round(time.Millisecond))
		}
	}
	return results, nil
}

// printTable prints one row per work, one column per peer, each figure
// with its ratio to direct minio-go's (the first peer): for rates the
// share of direct's rate, for times how many times direct's time.
func printTable(out io.Writer, e *env, peers []peer, results [][]result) {
	fmt.Fprintf(out, "\nspherebench: one MinIO (single drive, 127.0.0.1), big object %d MiB, %d listed objects, %d × 4 KiB files\n",
		e.o.bigSize>>20, e.o.listCount, e.o.catCount)
	fmt.Fprintln(out, "ratios: for rates, the figure as a share of direct minio-go's; for times, how many times direct's")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	head := []string{"work"}
	for _, p := range peers {
		head = append(head, p.name())
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, w := range works() {
		row := []string{w.title + " (" + w.unit + ")"}
		ref := results[i][0]
		for _, r := range results[i] {
			switch {
			case r.err != nil || ref.err != nil || ref.value == 0:
				row = append(row, r.String())
			case w.rate:
				row = append(row, fmt.Sprintf("%s (%.0f%%)", r, 100*r.value/ref.value))
			default:
				row = append(row, fmt.Sprintf("%s (%.1f×)", r, r.value/ref.value))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	for i, w := range works() {
		for j, r := range results[i] {
			if r.err != nil {
				fmt.Fprintf(out, "%s, %s: %v\n", peers[j].name(), w.title, r.err)
			}
		}
	}
}

// printWarnings prints what may make the figures less than they seem.
func printWarnings(out io.Writer, e *env) {
	for _, w := range e.warnings {
		fmt.Fprintln(out, "warning:", w)
	}
}
