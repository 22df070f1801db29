// Package fusefs mounts a project's vfs.Tree as a Linux directory with
// go-fuse. It is the only package that knows about FUSE: each kernel request
// becomes one call of the tree with the caller's uid and gid, and the tree's
// error becomes an errno (errno.go). Whatever the tree decides is final:
// the mount does not use the kernel's permission checks (no
// default_permissions), and no kernel cache answers in its place unless what
// it keeps is the same for every caller (see Mount).
package fusefs

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// MountOptions are the daemon's choices for one mount.
type MountOptions struct {
	// Debug logs every FUSE request and reply. The replies to READ hold
	// data: never on a mount whose secrets are real.
	Debug bool
	// FsName is the "filesystem" column of mount and df, e.g.
	// "sphere:acme/cats/p1".
	FsName string
	// NoPassthrough serves every read of a dataset's file through the
	// daemon, even when its content is a local file the kernel could read
	// directly (see datasetFile.Open). For comparisons.
	NoPassthrough bool
}

// Mounted is a tree being served at a directory.
type Mounted struct {
	dir    string
	server *fuse.Server
}

// The size of READ and WRITE requests, and of the kernel's readahead on the
// mount: large requests make fewer round trips through the daemon for the
// large sequential reads and writes of datasets and objects.
const (
	maxRequest  = 1 << 20
	readAheadKB = 1024
)

// Mount serves tree at dir and returns once the kernel has the mount.
//
// Every user of the host reaches the mount (allow_other): the tree decides
// each request by the caller's uid. For that to hold, the kernel must not
// answer a request from a cache filled for another caller, or from one
// filled before a role was revoked:
//   - entry, attribute and negative timeouts are zero by default. The dentry
//     cache is shared by every uid, and whether a name exists, and with which
//     mode and owner, depends on who asks; a cached entry would also outlive
//     a revoked role. Every path walk therefore asks the tree again (a LOOKUP
//     per component, a GETATTR per stat): a few microseconds each, a price
//     paid for answers that are always the caller's own;
//   - the exception is below a gate, datasets/NAME of a sealed dataset or
//     s3/NAME, where the tree gives attributes that are the same for every
//     caller, with a timeout (vfs.Attr.Timeout): the gate itself is never
//     kept, so every path walk from outside is decided again at the gate
//     (the vfs package comment says why that is safe, and its one limit);
//   - READDIRPLUS is on, but a listing tells the kernel only about entries
//     it may keep (the same ones): elsewhere a listing fills no cache;
//   - secrets are opened with FOPEN_DIRECT_IO, so a value never enters the
//     page cache, where another uid's read could be served from it;
//   - directories are opened without FOPEN_CACHE_DIR, so listings are never
//     kept.
func Mount(dir string, tree *vfs.Tree, opts MountOptions) (*Mounted, error) {
	var zero time.Duration
	root := &rootDir{directory{node{mnt: &mount{tree: tree, passthrough: !opts.NoPassthrough}, r: vfs.Root}}}
	server, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		// Modes are the caller's rights: a 0000 secret must stay 0000,
		// which go-fuse would otherwise show as 0644.
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
		MountOptions: fuse.MountOptions{
			AllowOther:   true,
			DirectMount:  true,
			FsName:       opts.FsName,
			Name:         "sphere",
			Debug:        opts.Debug,
			MaxWrite:     maxRequest,
			MaxReadAhead: maxRequest,
			// O_TRUNC comes with the open that asks for it, not as a
			// separate truncation after it: an object is then written
			// from the open, and a spool starts empty.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s at %s: %w", tree, dir, err)
	}
	raiseReadAhead(dir)
	return &Mounted{dir: dir, server: server}, nil
}

// raiseReadAhead sets the kernel's readahead on the mount to readAheadKB:
// the kernel offers FUSE its default (128 KiB) and only the mount's
// backing device's setting raises it. It needs root; without, or on a
// kernel without the setting, the default stays.
func raiseReadAhead(dir string) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	os.WriteFile(p, []byte(fmt.Sprint(readAheadKB)), 0)
}

// Unmount detaches the mount. It fails (EBUSY) while a process has a file
// open or its working directory in it.
func (m *Mounted) Unmount() error {
	if err := m.server.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", m.dir, err)
	}
	return nil
}

// Wait returns when the mount has been unmounted, by Unmount or by someone
// else (umount, fusermount -u).
func (m *Mounted) Wait() { m.server.Wait() }
