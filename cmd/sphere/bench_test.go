package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// BenchmarkMetadataWrite: 16 concurrent callers creating communities through
// the daemon's socket, each write committed through Raft (fsync included).
// Reports ops/s and the p50/p99 latency of one write.
func BenchmarkMetadataWrite(b *testing.B) {
	n := startNode(b, nodeOpts{})
	client := api.Dial(n.socket)
	ctx := context.Background()
	if err := client.Call(ctx, api.MCreate, api.CreateReq{Ref: "org:bench"}, nil); err != nil {
		b.Fatal(err)
	}
	const callers = 16
	lat := make([]time.Duration, b.N)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= b.N {
					return
				}
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
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
}
