// Package fusefs mounts a project's vfs.Tree as a Linux directory with
// go-fuse. It is the only package that knows about FUSE: each kernel request
// becomes one call of the tree with the caller's uid and gid, and the tree's
// error becomes an errno (errno.go). Whatever the tree decides is final:
// the mount does not use the kernel's permission checks (no
// default_permissions), and no kernel cache answers in its place (see Mount).
package fusefs

import (
	"fmt"
	"time"

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
}

// Mounted is a tree being served at a directory.
type Mounted struct {
	dir    string
	server *fuse.Server
}

// Mount serves tree at dir and returns once the kernel has the mount.
//
// Every user of the host reaches the mount (allow_other): the tree decides
// each request by the caller's uid. For that to hold, the kernel must not
// answer a request from a cache filled for another caller, or from one
// filled before a role was revoked:
//   - entry, attribute and negative timeouts are zero. The dentry cache is
//     shared by every uid, and whether a name exists, and with which mode and
//     owner, depends on who asks; a cached entry would also outlive a revoked
//     role. Every path walk therefore asks the tree again (a LOOKUP per
//     component, a GETATTR per stat): a few microseconds each, a price paid
//     for answers that are always the caller's own;
//   - READDIRPLUS is off: it only exists to fill those caches;
//   - secrets are opened with FOPEN_DIRECT_IO, so a value never enters the
//     page cache, where another uid's read could be served from it;
//   - directories are opened without FOPEN_CACHE_DIR, so listings are never
//     kept.
func Mount(dir string, tree *vfs.Tree, opts MountOptions) (*Mounted, error) {
	var zero time.Duration
	root := &rootDir{directory{node{tree: tree, ref: vfs.Root}}}
	server, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		// Modes are the caller's rights: a 0000 secret must stay 0000,
		// which go-fuse would otherwise show as 0644.
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
		MountOptions: fuse.MountOptions{
			AllowOther:         true,
			DirectMount:        true,
			FsName:             opts.FsName,
			Name:               "sphere",
			Debug:              opts.Debug,
			DisableReadDirPlus: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s at %s: %w", tree, dir, err)
	}
	return &Mounted{dir: dir, server: server}, nil
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
