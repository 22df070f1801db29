package fusefs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// BenchmarkStat stats a file through a real mount, as the test process (a
// developer), and reports stats/s:
//   - sealed-path: a sealed dataset's file by its absolute path. The kernel
//     keeps the entries below the gate; each walk still asks the tree for
//     datasets/ and datasets/fish (the gates are never kept);
//   - sealed-below-gate: the same file relative to a directory below the
//     gate (fstatat), all from the kernel's cache;
//   - initializing: a file of an initializing dataset, by path: nothing is
//     kept, every component is asked.
func BenchmarkStat(b *testing.B) {
	tm := newTestMount(b, MountOptions{})
	dir, err := os.Open(tm.path("datasets/fish/deep/er"))
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	for _, bc := range []struct {
		name string
		stat func(*unix.Stat_t) error
	}{
		{"sealed-path", func(st *unix.Stat_t) error { return unix.Stat(tm.path("datasets/fish/deep/er/c.csv"), st) }},
		{"sealed-below-gate", func(st *unix.Stat_t) error { return unix.Fstatat(int(dir.Fd()), "c.csv", st, 0) }},
		{"initializing", func(st *unix.Stat_t) error { return unix.Stat(tm.path("datasets/cats/a.txt"), st) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var st unix.Stat_t
			if err := bc.stat(&st); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := bc.stat(&st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stats/s")
		})
	}
}

// BenchmarkSealedRead reads a 64 MiB file of a sealed dataset, whose
// content is a local file, sequentially in 1 MiB reads (MB/s):
//   - passthrough: the kernel reads the local file itself;
//   - readat: every read goes through the daemon (Datasets content
//     ReadAt): the mount without passthrough, its page cache dropped
//     before each pass;
//   - page-cache: without passthrough, the pages the kernel kept;
//   - loopback: go-fuse's loopback over a directory holding the same
//     file, for comparison;
//   - local: the file read directly, without FUSE.
func BenchmarkSealedRead(b *testing.B) {
	const size = 64 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	local := filepath.Join(b.TempDir(), "file")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		b.Fatal(err)
	}
	loop := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(loop, 0o755); err != nil {
		b.Fatal(err)
	}
	root, err := fs.NewLoopbackRoot(filepath.Dir(local))
	if err != nil {
		b.Fatal(err)
	}
	server, err := fs.Mount(loop, root, &fs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer server.Unmount()

	mount := func(opts MountOptions) string {
		tm := newTestMount(b, opts)
		tm.datasets.Put(tm.fish, "big.bin", data)
		return tm.path("datasets/fish/big.bin")
	}
	for _, bc := range []struct {
		name string
		path func() string
		drop bool // drop the file's pages before each pass
	}{
		{"passthrough", func() string { return mount(MountOptions{}) }, false},
		{"readat", func() string { return mount(MountOptions{NoPassthrough: true}) }, true},
		{"page-cache", func() string { return mount(MountOptions{NoPassthrough: true}) }, false},
		{"loopback", func() string { return filepath.Join(loop, "file") }, false},
		{"local", func() string { return local }, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := bc.path()
			buf := make([]byte, 1<<20)
			read := func() {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if bc.drop {
					unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				}
				n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
				if err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
			read() // warm: open once, fill what is kept
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				read()
			}
		})
	}
}

// onlyReader hides WriteTo, so io.CopyBuffer reads with the buffer given.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
