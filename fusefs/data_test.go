package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/internal/testwait"
	"github.com/sphere-sandbox/sphere/policy"
)

// errnoOf is the errno err carries (0 for nil); the test fails if it
// carries none.
func errnoOf(t *testing.T, err error) syscall.Errno {
	t.Helper()
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		t.Fatalf("%v is not an errno", err)
	}
	return errno
}

// commitWait bounds the wait for what the kernel's RELEASE commits, which
// it sends just after close(2) returns.
const commitWait = 10 * time.Second

func TestDatasetReadWriteList(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	content := func(p string) string {
		t.Helper()
		v, ok := tm.datasets.Get(tm.cats, p)
		if !ok {
			t.Fatalf("datasets/cats/%s does not exist", p)
		}
		return string(v)
	}
	if got := mustRunAs(t, aliceUID, "cat", tm.path("datasets/cats/a.txt")); got+"\n" != catsFile {
		t.Errorf("cat: %q", got)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo one > "+tm.path("datasets/cats/b.txt"))
	if v := content("b.txt"); v != "one\n" {
		t.Errorf("created %q", v)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo two >> "+tm.path("datasets/cats/b.txt"))
	if v := content("b.txt"); v != "one\ntwo\n" {
		t.Errorf("appended %q", v)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo three > "+tm.path("datasets/cats/b.txt"))
	if v := content("b.txt"); v != "three\n" {
		t.Errorf("replaced %q", v)
	}
	mustRunAs(t, aliceUID, "truncate", "-s", "2", tm.path("datasets/cats/b.txt"))
	if v := content("b.txt"); v != "th" {
		t.Errorf("truncated %q", v)
	}
	mustRunAs(t, aliceUID, "mkdir", "-p", tm.path("datasets/cats/sub/deeper"))
	mustRunAs(t, aliceUID, "sh", "-c", fmt.Sprintf("head -c 3000000 /dev/zero > %s", tm.path("datasets/cats/sub/deeper/big")))
	if v := content("sub/deeper/big"); len(v) != 3000000 {
		t.Errorf("big file: %d bytes", len(v))
	}
	mustRunAs(t, aliceUID, "touch", tm.path("datasets/cats/empty"))
	if v := content("empty"); v != "" {
		t.Errorf("touched %q", v)
	}
	// A random write in the middle, through a descriptor kept open.
	f, err := os.OpenFile(tm.path("datasets/cats/a.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("HELLO"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, _ := f.ReadAt(buf, 0); string(buf[:n]) != "HELLO from cats\n" {
		t.Errorf("a writer reads its own changes: %q", buf[:n])
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(catsFile)) {
		t.Errorf("fstat: %v %v", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if v := content("a.txt"); v != "HELLO from cats\n" {
		t.Errorf("after a random write: %q", v)
	}

	for _, tc := range []struct {
		uid  uint32
		dir  string
		want string
	}{
		{aliceUID, "datasets/cats", "a.txt b.txt empty sub"},
		{bobUID, "datasets/cats", "a.txt b.txt empty sub"},
		{aliceUID, "datasets/cats/sub", "deeper"},
		{aliceUID, "datasets/fish/deep/er", "c.csv"},
		{aliceUID, "datasets", "cats dogs fish"},
	} {
		if got := strings.Fields(mustRunAs(t, tc.uid, "ls", tm.path(tc.dir))); strings.Join(got, " ") != tc.want {
			t.Errorf("uid %d ls %s: %q, want %q", tc.uid, tc.dir, got, tc.want)
		}
	}
	if got := mustRunAs(t, aliceUID, "ls", "-ln", tm.path("datasets/cats/sub")); !strings.Contains(got, "drwxr-xr-x 2 1001 1001") {
		t.Errorf("ls -l: %q", got)
	}

	// A viewer sees the tree, reads and writes nothing; carol sees no dataset.
	failAs(t, bobUID, "Permission denied", "cat", tm.path("datasets/cats/a.txt"))
	failAs(t, bobUID, "Permission denied", "sh", "-c", "echo x > "+tm.path("datasets/cats/a.txt"))
	failAs(t, bobUID, "Permission denied", "sh", "-c", "echo x > "+tm.path("datasets/cats/new"))
	failAs(t, bobUID, "Permission denied", "rm", tm.path("datasets/cats/b.txt"))
	failAs(t, bobUID, "Permission denied", "mkdir", tm.path("datasets/cats/d"))
	failAs(t, carolUID, "No such file or directory", "ls", tm.path("datasets/cats"))
	failAs(t, carolUID, "No such file or directory", "cat", tm.path("datasets/cats/a.txt"))

	// Removing.
	failAs(t, aliceUID, "Directory not empty", "rmdir", tm.path("datasets/cats/sub"))
	failAs(t, aliceUID, "Directory not empty", "rmdir", tm.path("datasets/cats"))
	mustRunAs(t, aliceUID, "rm", "-r", tm.path("datasets/cats/sub"), tm.path("datasets/cats/b.txt"))
	if tm.datasets.Has(tm.cats, "sub") || tm.datasets.Has(tm.cats, "b.txt") {
		t.Error("rm left files behind")
	}
	// mv within a dataset copies and deletes (EXDEV), each step decided.
	mustRunAs(t, aliceUID, "mv", tm.path("datasets/cats/a.txt"), tm.path("datasets/cats/c.txt"))
	if v := content("c.txt"); v != "HELLO from cats\n" || tm.datasets.Has(tm.cats, "a.txt") {
		t.Errorf("mv: %q", v)
	}
}

func TestSealedDatasetIsReadOnly(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	mustRunAs(t, aliceUID, "sh", "-c", "echo v1 > "+tm.path("datasets/cats/n.txt"))
	// A writer holds the file open while the dataset is sealed.
	f, err := os.OpenFile(tm.path("datasets/cats/n.txt"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tm.datasets.Seal(tm.cats)
	if _, err := f.WriteAt([]byte("x"), 0); errnoOf(t, err) != syscall.EROFS {
		t.Errorf("write to a file opened before the seal: %v", err)
	}
	for _, cmd := range []string{
		"echo x > " + tm.path("datasets/cats/n.txt"),
		"echo x >> " + tm.path("datasets/cats/n.txt"),
		"echo x > " + tm.path("datasets/cats/new.txt"),
		"touch " + tm.path("datasets/cats/n.txt"),
		"mkdir " + tm.path("datasets/cats/d"),
		"rm " + tm.path("datasets/cats/n.txt"),
		"truncate -s 0 " + tm.path("datasets/cats/n.txt"),
	} {
		failAs(t, aliceUID, "Read-only file system", "sh", "-c", cmd)
	}
	if got := mustRunAs(t, aliceUID, "cat", tm.path("datasets/cats/n.txt")); got != "v1" {
		t.Errorf("read after the seal: %q", got)
	}
	if got := mustRunAs(t, aliceUID, "stat", "-c", "%a %u %g", tm.path("datasets/cats"), tm.path("datasets/cats/n.txt")); got != "555 1001 1001\n444 0 0" {
		t.Errorf("stat after the seal: %q", got)
	}
	if v, _ := tm.datasets.Get(tm.cats, "n.txt"); string(v) != "v1\n" {
		t.Errorf("a sealed file changed: %q", v)
	}
}

func TestDatasetSizeLimit(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	tm.datasets.Limit(tm.cats, int64(len(catsFile))+10) // 10 bytes left
	f, err := os.Create(tm.path("datasets/cats/f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 10)); err != nil {
		t.Fatalf("a write that fits: %v", err)
	}
	// Refused at the write, not only at the commit.
	if _, err := f.Write(make([]byte, 1)); errnoOf(t, err) != syscall.ENOSPC {
		t.Errorf("a write past the limit: %v, want ENOSPC", err)
	}
	if err := f.Truncate(11); errnoOf(t, err) != syscall.ENOSPC {
		t.Errorf("truncate past the limit: %v, want ENOSPC", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if v, _ := tm.datasets.Get(tm.cats, "f"); len(v) != 10 {
		t.Errorf("committed %d bytes", len(v))
	}
	// Replacing a file counts what it replaces.
	if err := os.WriteFile(tm.path("datasets/cats/f"), make([]byte, 10), 0); err != nil {
		t.Errorf("rewriting the file at the same size: %v", err)
	}
	failAs(t, aliceUID, "No space left on device", "sh", "-c", "head -c 100 /dev/zero > "+tm.path("datasets/cats/g"))
}

func TestPublishedDatasetIsReadOnly(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	if got := mustRunAs(t, aliceUID, "cat", tm.path("datasets/dogs/readme.txt")); got+"\n" != dogsFile {
		t.Errorf("cat: %q", got)
	}
	for _, cmd := range []string{
		"echo x > " + tm.path("datasets/dogs/readme.txt"),
		"echo x > " + tm.path("datasets/dogs/new"),
		"mkdir " + tm.path("datasets/dogs/d"),
		"rm " + tm.path("datasets/dogs/readme.txt"),
	} {
		failAs(t, aliceUID, "Read-only file system", "sh", "-c", cmd)
	}
}

// Below a sealed dataset's gate the kernel keeps entries and attributes for
// everyone; the gate itself is asked every time, so a caller who may not
// view the dataset is stopped there, however much another caller's walks
// have cached below it.
func TestSealedCacheDoesNotLeakAcrossCallers(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	deep := tm.path("datasets/fish/deep/er/c.csv")
	if got := mustRunAs(t, aliceUID, "stat", "-c", "%a %u %s", deep); got != "444 0 6" {
		t.Fatalf("alice stats %q", got)
	}
	stats := tm.datasets.Stats()
	mustRunAs(t, aliceUID, "stat", deep)
	mustRunAs(t, aliceUID, "ls", "-l", tm.path("datasets/fish/deep/er"))
	if n := tm.datasets.Stats(); n != stats {
		t.Errorf("cached entries were asked again: %d stats, then %d", stats, n)
	}
	failAs(t, carolUID, "No such file or directory", "stat", deep)
	failAs(t, carolUID, "No such file or directory", "cat", deep)
	failAs(t, anonUID, "Permission denied", "stat", deep)
	// bob may view the dataset, so sees the file, but may not read it.
	mustRunAs(t, bobUID, "stat", deep)
	failAs(t, bobUID, "Permission denied", "cat", deep)
	if got := mustRunAs(t, aliceUID, "cat", deep); got+"\n" != fishFile {
		t.Errorf("alice reads %q", got)
	}
	// Revoked, alice is stopped at the gate too: view is checked there, use at open.
	tm.store.Revoke(101, []policy.Action{policy.ActUseResource})
	failAs(t, aliceUID, "Permission denied", "cat", deep)
	tm.store.Revoke(101, []policy.Action{policy.ActViewResource})
	failAs(t, aliceUID, "No such file or directory", "stat", deep)
}

// `ls -l` of a sealed dataset's directory or of a bucket asks nothing per
// entry: the listing (READDIRPLUS) gives the kernel what it keeps.
func TestListingFillsTheKernelCache(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	const n = 200
	for i := range n {
		tm.datasets.Put(tm.fish, fmt.Sprintf("many/f%03d", i), []byte("x"))
		tm.buckets.Of(tm.bucket).Put(fmt.Sprintf("many/o%03d", i), []byte("x"))
	}
	for _, tc := range []struct {
		dir   string
		stats func() int
	}{
		{"datasets/fish/many", tm.datasets.Stats},
		{"s3/bucket/many", tm.buckets.Of(tm.bucket).Stats},
	} {
		before := tc.stats()
		out := mustRunAs(t, aliceUID, "ls", "-l", tm.path(tc.dir))
		if lines := strings.Count(out, "\n"); lines != n {
			t.Errorf("ls -l %s: %d lines", tc.dir, lines)
		}
		if asked := tc.stats() - before; asked > 5 {
			t.Errorf("ls -l %s asked %d stats for %d entries", tc.dir, asked, n)
		}
	}
	// Elsewhere a listing fills nothing: every name is asked for its caller.
	if got := mustRunAs(t, carolUID, "ls", "-l", tm.path("secrets")); !strings.Contains(got, "TOKEN") || strings.Contains(got, "HIDDEN") {
		t.Errorf("carol: %q", got)
	}
}

// A sealed file's pages stay in the kernel's cache across opens, or the
// kernel reads its local copy itself: a second read of it never reaches
// the content.
func TestSealedReadsAreServedByTheKernel(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts MountOptions
	}{
		{"passthrough", MountOptions{}},
		{"page cache", MountOptions{NoPassthrough: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTestMount(t, tc.opts)
			data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			tm.datasets.Put(tm.fish, "big.bin", data)
			p := tm.path("datasets/fish/big.bin")
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("first read: %d bytes, %v", len(got), err)
			}
			reads := tm.datasets.Reads()
			t.Logf("%s: %d reads reached the content", tc.name, reads)
			for range 3 {
				if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read again: %d bytes, %v", len(got), err)
				}
			}
			if n := tm.datasets.Reads(); n != reads {
				t.Errorf("reads of a sealed file reached the content again: %d, then %d", reads, n)
			}
			// Every open is still decided.
			failAs(t, bobUID, "Permission denied", "cat", p)
		})
	}
}

// TestPosixInADataset runs go-fuse's POSIX cases that apply to an
// initializing dataset, as its developer. FileBasic (wants the mode given
// to open, not the caller's rights), the link, symlink and rename cases
// (EXDEV, EPERM), OpenAt (renames a directory), XAttr and XAttrLarge (ENOTSUP), Fallocate,
// FallocateKeepSize and Tmpfile (not supported) and the lock cases (the
// kernel's, local to the host) do not apply.
func TestPosixInADataset(t *testing.T) {
	for _, name := range []string{
		"AppendWrite", "DirectIO", "DirSeek", "FdLeak", "FileLarge", "FstatDeleted",
		"LseekHoleSeeksToEOF", "LseekEnxioCheck", "MkdirRmdir", "ParallelFileOpen",
		"ReadDirBasic", "ReadDirConsistency", "TruncateFile", "TruncateNoFile",
	} {
		t.Run(name, func(t *testing.T) {
			tm := newTestMount(t, MountOptions{})
			if err := os.Mkdir(tm.path("datasets/posix"), 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, tm.path("datasets/posix"))
		})
	}
}

func TestBucketListReadWrite(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	b := tm.buckets.Of(tm.bucket)
	if got := mustRunAs(t, aliceUID, "ls", tm.path("s3")); got != "archive\nbucket\nshared" {
		t.Errorf("ls s3 (off is not activated): %q", got)
	}
	failAs(t, aliceUID, "No such file or directory", "stat", tm.path("s3/off"))
	if got := mustRunAs(t, aliceUID, "ls", tm.path("s3/bucket")); got != "data\ntop.txt" {
		t.Errorf("ls: %q", got)
	}
	if got := mustRunAs(t, aliceUID, "ls", "-ln", tm.path("s3/bucket")); !strings.Contains(got, "-rw-r--r-- 1 0 0 12") || !strings.Contains(got, "drwxr-xr-x 2 0 0") {
		t.Errorf("ls -l: %q", got)
	}
	if got := mustRunAs(t, aliceUID, "cat", tm.path("s3/bucket/data/x.csv")); got+"\n" != objectFile {
		t.Errorf("cat: %q", got)
	}
	// The kernel sends RELEASE after close(2) has returned to cat.
	testwait.For(t, 5*time.Second, "the reader to be closed after cat exits", func() bool { return b.Readers() == 0 })

	// Sequential writes stream, committed at close.
	mustRunAs(t, aliceUID, "sh", "-c", "head -c 3000000 /dev/zero > "+tm.path("s3/bucket/new.bin"))
	if v, ok := b.Get("new.bin"); !ok || len(v) != 3000000 {
		t.Errorf("after close: %d bytes, %v", len(v), ok)
	}
	if err := os.WriteFile(tm.path("s3/bucket/data/y.csv"), []byte("y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get("data/y.csv"); string(v) != "y\n" {
		t.Errorf("written by a threaded process: %q", v)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo replaced > "+tm.path("s3/bucket/top.txt"))
	if v, _ := b.Get("top.txt"); string(v) != "replaced\n" {
		t.Errorf("replaced: %q", v)
	}
	// An empty file appears at the kernel's RELEASE, just after close.
	mustRunAs(t, aliceUID, "touch", tm.path("s3/bucket/empty"))
	if !b.WaitFor(commitWait, "empty", "") {
		t.Error("touch made no object")
	}
	// What S3 cannot do: writes but at the end, and writing without replacing.
	f, err := os.Create(tm.path("s3/bucket/random"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("z"), 100); errnoOf(t, err) != syscall.ENOTSUP {
		t.Errorf("a write past the end: %v, want ENOTSUP", err)
	}
	if _, err := f.WriteAt([]byte("z"), 0); errnoOf(t, err) != syscall.ENOTSUP {
		t.Errorf("a write over what was written: %v, want ENOTSUP", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get("random"); string(v) != "abc" {
		t.Errorf("committed %q", v)
	}
	if _, err := os.OpenFile(tm.path("s3/bucket/random"), os.O_WRONLY, 0); errnoOf(t, err) != syscall.ENOTSUP {
		t.Errorf("open to write without O_TRUNC: %v, want ENOTSUP", err)
	}
	failAs(t, aliceUID, "Operation not supported", "sh", "-c", "echo more >> "+tm.path("s3/bucket/random"))

	// Directories, removal, rename in place.
	mustRunAs(t, aliceUID, "mkdir", tm.path("s3/bucket/dir"))
	mustRunAs(t, aliceUID, "rmdir", tm.path("s3/bucket/dir"))
	failAs(t, aliceUID, "Directory not empty", "rmdir", tm.path("s3/bucket/data"))
	mustRunAs(t, aliceUID, "mv", tm.path("s3/bucket/random"), tm.path("s3/bucket/data/moved"))
	if v, ok := b.Get("data/moved"); !ok || string(v) != "abc" {
		t.Errorf("renamed: %q %v", v, ok)
	}
	if _, ok := b.Get("random"); ok {
		t.Error("the renamed object is still there")
	}
	if got := mustRunAs(t, aliceUID, "cat", tm.path("s3/bucket/data/moved")); got != "abc" {
		t.Errorf("read after rename: %q", got)
	}
	if err := os.Rename(tm.path("s3/bucket/top.txt"), tm.path("s3/archive/top.txt")); errnoOf(t, err) != syscall.EXDEV {
		t.Errorf("rename to another bucket: %v, want EXDEV", err)
	}
	mustRunAs(t, aliceUID, "rm", tm.path("s3/bucket/data/moved"))
	if _, ok := b.Get("data/moved"); ok {
		t.Error("rm left the object")
	}
}

func TestBucketRights(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	// Read-only and published connectors.
	for _, p := range []string{"s3/archive", "s3/shared"} {
		failAs(t, aliceUID, "Read-only file system", "sh", "-c", "echo x > "+tm.path(p+"/new"))
		failAs(t, aliceUID, "Read-only file system", "mkdir", tm.path(p+"/d"))
	}
	failAs(t, aliceUID, "Read-only file system", "rm", tm.path("s3/archive/old.txt"))
	failAs(t, aliceUID, "Read-only file system", "sh", "-c", "echo x > "+tm.path("s3/archive/old.txt"))
	if got := mustRunAs(t, aliceUID, "cat", tm.path("s3/archive/old.txt")); got+"\n" != objectFile {
		t.Errorf("cat: %q", got)
	}
	// A viewer sees the connector's name, not what is in it: it stops at
	// the gate, below which the kernel keeps entries for everyone.
	if got := mustRunAs(t, bobUID, "ls", tm.path("s3")); got != "archive\nbucket\nshared" {
		t.Errorf("a viewer lists %q", got)
	}
	failAs(t, bobUID, "Permission denied", "stat", tm.path("s3/bucket"))
	failAs(t, bobUID, "Permission denied", "ls", tm.path("s3/bucket"))
	failAs(t, bobUID, "Permission denied", "cat", tm.path("s3/bucket/top.txt"))
	failAs(t, bobUID, "Permission denied", "sh", "-c", "echo x > "+tm.path("s3/bucket/new"))
	failAs(t, carolUID, "No such file or directory", "ls", tm.path("s3/bucket"))
	// A revoked developer, after a walk that cached the object: stopped at the gate.
	mustRunAs(t, aliceUID, "stat", tm.path("s3/bucket/data/x.csv"))
	tm.store.Revoke(101, []policy.Action{policy.ActUseResource})
	failAs(t, aliceUID, "Permission denied", "stat", tm.path("s3/bucket/data/x.csv"))
}

// The bucket's errors reach the caller through the one mapping of errno.go.
func TestBucketErrors(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	b := tm.buckets.Of(tm.bucket)
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{fmt.Errorf("minio: dial tcp: connection refused: %w", vfs.ErrUnavailable), syscall.EIO},
		{fmt.Errorf("minio: NoSuchKey: %w", vfs.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("minio: AccessDenied: %w", vfs.ErrDenied), syscall.EACCES},
		{errors.New("minio: something else"), syscall.EIO},
	} {
		t.Run(tc.want.Error(), func(t *testing.T) {
			b.Fail(tc.err)
			defer b.Fail(nil)
			_, err := os.ReadFile(tm.path("s3/bucket/fresh-" + fmt.Sprint(int(tc.want))))
			if got := errnoOf(t, err); got != tc.want {
				t.Errorf("read: %v, want %v", err, tc.want)
			}
			_, err = os.ReadDir(tm.path("s3/bucket/data"))
			if got := errnoOf(t, err); got != tc.want {
				t.Errorf("list: %v, want %v", err, tc.want)
			}
		})
	}
	// A reader open when the bucket goes away.
	f, err := os.Open(tm.path("s3/bucket/top.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b.Fail(fmt.Errorf("minio: timeout: %w", vfs.ErrUnavailable))
	defer b.Fail(nil)
	if _, err := f.Read(make([]byte, 10)); errnoOf(t, err) != syscall.EIO {
		t.Errorf("read of an open file: %v, want EIO", err)
	}
}

// The operations nothing here does answer deliberately, never ENOSYS.
func TestNoDataOperationFallsThroughToENOSYS(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	file := tm.path("datasets/cats/a.txt")
	object := tm.path("s3/bucket/top.txt")
	for _, tc := range []struct {
		name string
		op   func() error
		want syscall.Errno
	}{
		{"chmod", func() error { return os.Chmod(file, 0o600) }, syscall.EPERM},
		{"chown of an object", func() error { return os.Chown(object, 1, 1) }, syscall.EPERM},
		{"link", func() error { return os.Link(file, tm.path("datasets/cats/l")) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("a.txt", tm.path("datasets/cats/l")) }, syscall.EPERM},
		{"symlink in a bucket", func() error { return os.Symlink("a", tm.path("s3/bucket/l")) }, syscall.EPERM},
		{"mkfifo", func() error { return unix.Mkfifo(tm.path("datasets/cats/p"), 0o600) }, syscall.EPERM},
		{"setxattr", func() error { return unix.Setxattr(file, "user.x", []byte("1"), 0) }, syscall.ENOTSUP},
		{"getxattr of an object", func() error { _, err := unix.Getxattr(object, "user.x", nil); return err }, syscall.ENOTSUP},
		{"unlink of a directory", func() error { return unix.Unlink(tm.path("s3/bucket/data")) }, syscall.EISDIR},
		{"rmdir of a file", func() error { return unix.Rmdir(file) }, syscall.ENOTDIR},
		{"bad name", func() error { return os.WriteFile(tm.path("datasets/cats/a\x01b"), nil, 0o600) }, syscall.EINVAL},
		{"rename in a dataset", func() error { return os.Rename(file, tm.path("datasets/cats/b")) }, syscall.EXDEV},
		{"rename of a prefix", func() error { return os.Rename(tm.path("s3/bucket/data"), tm.path("s3/bucket/d2")) }, syscall.EXDEV},
		{"exec a data file", func() error { return unix.Access(file, unix.X_OK) }, syscall.EACCES},
		{"truncate an object", func() error { return os.Truncate(object, 3) }, syscall.ENOTSUP},
		{"truncate an object to nothing", func() error { return os.Truncate(object, 0) }, 0},
		{"access W on a sealed dataset", func() error { return unix.Access(tm.path("datasets/fish/deep"), unix.W_OK) }, syscall.EROFS},
		{"read a directory", func() error { _, err := os.ReadFile(tm.path("datasets/cats")); return err }, syscall.EISDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if got := errnoOf(t, err); got == syscall.ENOSYS || got != tc.want {
				t.Errorf("got %v (%d), want %v", err, got, tc.want)
			}
		})
	}
}
