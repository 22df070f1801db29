package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// BenchmarkMetadataWrite: 16 concurrent callers creating communities through
// the daemon's socket, each write committed through Raft (fsync included).
// Reports ops/s and the p50/p99 latency of one write.
func BenchmarkMetadataWrite(b *testing.B) {
	benchWrites(b, []*node{startNode(b, nodeOpts{})})
}

// benchWrites runs b.N community creations from 16 concurrent callers spread
// over the nodes' sockets and reports writes/s and the p50/p99 latency.
func benchWrites(b *testing.B, nodes []*node) {
	ctx := context.Background()
	if err := api.Dial(nodes[0].socket).Call(ctx, api.MCreate, api.CreateReq{Ref: "org:bench"}, nil); err != nil {
		b.Fatal(err)
	}
	if len(nodes) > 1 {
		sameState(b, nodes, 10*time.Second) // every node resolves bench
	}
	const callers = 16
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < callers; w++ {
		client := api.Dial(nodes[w%len(nodes)].socket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				if err := client.Call(ctx, api.MCreate, api.CreateReq{Ref: fmt.Sprintf("community:bench/c%d", i)}, nil); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
}

// benchProject is newProject for benchmarks: a node with a mounted project.
func benchProject(b *testing.B) (string, *node) {
	n := startNode(b, nodeOpts{})
	for _, args := range [][]string{
		{"org", "create", "acme"}, {"community", "create", "acme/cats"}, {"project", "create", projectPath},
	} {
		if _, errOut, code := n.try(0, args...); code != 0 {
			b.Fatal(errOut)
		}
	}
	if _, errOut, code := runAs(b, 0, []byte("s3cr3t"), "--socket", n.socket, "secret", "create", projectPath, "TOKEN"); code != 0 {
		b.Fatal(errOut)
	}
	mnt := n.dir + "/mnt"
	if _, errOut, code := n.try(0, "mount", projectPath, mnt); code != 0 {
		b.Fatal(errOut)
	}
	return mnt, n
}

// BenchmarkCatSecret: open, read and close secrets/NAME through the mount,
// each read decided by policy and decrypted (direct I/O, no page cache).
func BenchmarkCatSecret(b *testing.B) {
	mnt, _ := benchProject(b)
	path := mnt + "/secrets/TOKEN"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data, err := os.ReadFile(path)
		if err != nil || string(data) != "s3cr3t" {
			b.Fatalf("%q %v", data, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/cat")
}

// BenchmarkStatTree: stat of entries in the tree (root, a kind folder and a
// secret), each answered by the daemon after a policy decision.
func BenchmarkStatTree(b *testing.B) {
	mnt, _ := benchProject(b)
	paths := []string{mnt, mnt + "/secrets", mnt + "/secrets/TOKEN"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := os.Stat(paths[i%len(paths)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stats/s")
}
