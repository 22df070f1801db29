package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/fusefs"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

// mountTable is this node's mounts. It is node-local, not replicated: a
// mount is a session on this host's kernel. It is remembered in
// DATA-DIR/mounts.json so a restarted daemon mounts the same projects again.
type mountTable struct {
	d      *Daemon
	file   string
	mu     sync.Mutex
	active map[string]*mountEntry // by directory
}

type mountEntry struct {
	Project string `json:"project"`
	Dir     string `json:"dir"`
	UID     uint32 `json:"uid"` // who asked for it; they (or root) may unmount it
	// Remember is false for mounts given on the command line: they are
	// asked for at every start, and dropping the flag must drop the mount.
	Remember bool `json:"-"`
	mounted  *fusefs.Mounted
}

func newMountTable(d *Daemon) *mountTable {
	return &mountTable{d: d, file: filepath.Join(d.cfg.DataDir, "mounts.json"), active: map[string]*mountEntry{}}
}

// restore mounts what the node had mounted before and what the command line
// asks for. A remembered mount that cannot come back (its project was
// deleted meanwhile) is logged and forgotten; a command-line one is fatal.
func (t *mountTable) restore(ctx context.Context, flags []MountSpec) error {
	var saved []mountEntry
	if data, err := os.ReadFile(t.file); err == nil {
		if err := json.Unmarshal(data, &saved); err != nil {
			return fmt.Errorf("read %s: %w", t.file, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", t.file, err)
	}
	for _, m := range saved {
		root := caller{UID: m.UID, Local: true}
		root.Principal, root.Name = treeStore{t.d}.Principal(m.UID)
		if err := t.mount(ctx, root, m.Project, m.Dir, true); err != nil {
			t.d.log.Error("cannot restore mount; forgetting it", "project", m.Project, "dir", m.Dir, "err", err)
		}
	}
	for _, m := range flags {
		if err := t.mount(ctx, caller{Local: true, Principal: policy.Bootstrap, Name: "root"}, m.Project, m.Dir, false); err != nil {
			return fmt.Errorf("--mount %s=%s: %w", m.Project, m.Dir, err)
		}
	}
	return t.save()
}

// mount mounts a project for a caller. Running code in a project (which a
// mount is for) needs developer on it; the caller must also own the
// directory, since the daemon mounts as root and must not let a user cover
// a directory that is not theirs.
func (t *mountTable) mount(_ context.Context, c caller, project, dir string, remember bool) error {
	if !c.Local {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: mounts are asked for on the node's local socket, not the remote API")
	}
	if !filepath.IsAbs(dir) {
		return cluster.Errorf(cluster.CodeInvalid, "mount directory %q must be an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	var id policy.ID
	var path string
	var err error
	t.d.node.FSM().Read(func(s *cluster.State) {
		var p *cluster.Entity
		if p, err = t.d.resolve(s, c, "project:"+project); err == nil {
			id, path = p.ID, s.Path(p.ID)
		}
	})
	if err != nil {
		return err
	}
	if dec := t.d.decide(c.Principal, policy.ActRunCode, policy.Target{ID: id}); !dec.Allowed {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: mounting project %s needs %s", path, dec.Missing)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.active[dir]; ok {
		return cluster.Errorf(cluster.CodeExists, "%s already has project %s mounted", dir, m.Project)
	}
	// A mount left by a killed daemon answers "transport endpoint is not
	// connected" to everything, including the checks below.
	if err := fusefs.CleanStale(dir); err != nil {
		return fmt.Errorf("clean up the dead mount at %s: %w", dir, err)
	}
	if err := prepareDir(dir, c); err != nil {
		return err
	}
	store := treeStore{t.d}
	tree := vfs.New(store, treeAudit{log: t.d.audit, project: path}, id, path, vfs.WithDatasets(store), vfs.WithBuckets(store))
	mounted, err := fusefs.Mount(dir, tree, fusefs.MountOptions{FsName: "sphere:" + path})
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", path, dir, err)
	}
	t.active[dir] = &mountEntry{Project: path, Dir: dir, UID: c.UID, Remember: remember, mounted: mounted}
	t.d.log.Info("mounted", "project", path, "dir", dir, "uid", c.UID)
	return nil
}

// prepareDir makes sure dir exists, is a directory, and belongs to the caller.
func prepareDir(dir string, c caller) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) && c.UID == 0 {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return cluster.Errorf(cluster.CodeInvalid, "mount directory: %v", err)
	}
	if !fi.IsDir() {
		return cluster.Errorf(cluster.CodeInvalid, "mount directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && c.UID != 0 && st.Uid != c.UID {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: %s belongs to uid %d; you may only mount on a directory of your own", dir, st.Uid)
	}
	return nil
}

func (t *mountTable) unmount(c caller, dir string) error {
	dir = filepath.Clean(dir)
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.active[dir]
	if !ok {
		return cluster.Errorf(cluster.CodeNotFound, "no project is mounted at %s on this node", dir)
	}
	if !c.Local || (c.UID != 0 && c.UID != m.UID) {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: only root or uid %d, who mounted it, may unmount %s", m.UID, dir)
	}
	if err := m.mounted.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w (is a process still using it?)", dir, err)
	}
	delete(t.active, dir)
	t.d.log.Info("unmounted", "project", m.Project, "dir", dir)
	return t.saveLocked()
}

func (t *mountTable) list() []api.Mount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []api.Mount{}
	for _, m := range t.active {
		out = append(out, api.Mount{Project: m.Project, Dir: m.Dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}

func (t *mountTable) save() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.saveLocked()
}

// saveLocked writes the remembered mounts atomically (temp file, rename).
func (t *mountTable) saveLocked() error {
	var keep []mountEntry
	for _, m := range t.active {
		if m.Remember {
			keep = append(keep, *m)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].Dir < keep[j].Dir })
	data, err := json.Marshal(keep)
	if err != nil {
		return err
	}
	tmp := t.file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("remember mounts: %w", err)
	}
	return os.Rename(tmp, t.file)
}

// closeAll unmounts everything at shutdown, remembering the mounts so the
// next start restores them.
func (t *mountTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for dir, m := range t.active {
		if err := m.mounted.Unmount(); err != nil {
			t.d.log.Error("unmount at shutdown", "dir", dir, "err", err)
		}
	}
	t.active = map[string]*mountEntry{}
}

func (d *Daemon) mount(ctx context.Context, c caller, req api.MountReq) (any, error) {
	if err := d.mounts.mount(ctx, c, req.Project, req.Dir, true); err != nil {
		return nil, err
	}
	return nil, d.mounts.save()
}

func (d *Daemon) umount(_ context.Context, c caller, req api.DirReq) (any, error) {
	return nil, d.mounts.unmount(c, req.Dir)
}

func (d *Daemon) mountList(context.Context, caller, struct{}) (any, error) {
	return d.mounts.list(), nil
}
