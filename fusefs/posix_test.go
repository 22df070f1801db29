package fusefs

import (
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// TestPosix runs go-fuse's POSIX cases that apply to secrets/, a flat
// directory of small files named like environment variables, and to
// datasets/, where mkdir makes a dataset. Each gets a fresh, empty mount;
// the test process is a developer of the project.
//
// In secrets/: FileBasic (wants the mode given to open, not the caller's
// rights), FileLarge (128 KiB, over the 64 KiB limit), DirectIO,
// LseekHoleSeeksToEOF and LseekEnxioCheck (names with a dot), FstatDeleted
// (names starting with a digit), the link, rename and symlink cases (not
// supported), OpenAt and RenameOpenDir (subdirectories), XAttr and
// XAttrLarge (not supported), Fallocate, FallocateKeepSize and Tmpfile (not
// supported), and the lock cases (locks are the kernel's, local to the host,
// not sphere's) do not apply.
func TestPosix(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"AppendWrite", "secrets"},
		{"FdLeak", "secrets"},
		{"ParallelFileOpen", "secrets"},
		{"ReadDirBasic", "secrets"},
		{"ReadDirConsistency", "secrets"},
		{"TruncateFile", "secrets"},
		{"TruncateNoFile", "secrets"},
		{"MkdirRmdir", "datasets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTestMount(t, MountOptions{})
			tm.store.Clear()
			posixtest.All[tc.name](t, tm.path(tc.dir))
		})
	}
}
