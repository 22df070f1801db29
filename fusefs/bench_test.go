package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/sphere-sandbox/sphere/fusefs/internal/fake"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
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

// BenchmarkCheckpoint measures what the policy checkpoint costs on the
// path of reading a secret: the fixture's tree with every decision asked
// of a real policy.Index holding a realistic organization (as the daemon's
// Store does), against the same tree whose Decide allows without
// consulting anything (the bypass). The two run in turns, in alternating
// order, so that both see the same noise; each reports its time per
// operation (policy-ns/op, bypass-ns/op) and the overhead of policy over
// the bypass (overhead-%). ns/op is the pair's.
//   - tree: in-process, what the kernel asks for `cat secrets/TOKEN`:
//     lookups of secrets and TOKEN, getattr, open, read, flush, release;
//   - mount: stat and then open, read and close of secrets/TOKEN through a
//     real mount.
func BenchmarkCheckpoint(b *testing.B) {
	withPolicy, bypass := checkpointTree(b, true), checkpointTree(b, false)
	compare := func(b *testing.B, op func(*vfs.Tree) error) {
		var took [2]time.Duration // with policy, bypass
		i := 0
		for b.Loop() {
			for k := range 2 {
				side := (i + k) % 2
				tree := withPolicy
				if side == 1 {
					tree = bypass
				}
				start := time.Now()
				if err := op(tree); err != nil {
					b.Fatal(err)
				}
				took[side] += time.Since(start)
			}
			i++
		}
		n := float64(b.N)
		b.ReportMetric(float64(took[0].Nanoseconds())/n, "policy-ns/op")
		b.ReportMetric(float64(took[1].Nanoseconds())/n, "bypass-ns/op")
		b.ReportMetric(100*(float64(took[0])/float64(took[1])-1), "overhead-%")
	}

	b.Run("tree", func(b *testing.B) {
		ctx := context.Background()
		c := vfs.Caller{UID: rootUID, GID: rootUID, PID: uint32(os.Getpid())}
		buf := make([]byte, 4096)
		compare(b, func(t *vfs.Tree) error {
			dir, _, err := t.Lookup(ctx, c, vfs.Root, "secrets")
			if err != nil {
				return err
			}
			r, _, err := t.Lookup(ctx, c, dir, "TOKEN")
			if err != nil {
				return err
			}
			if _, err := t.Getattr(ctx, c, r, nil); err != nil {
				return err
			}
			h, err := t.Open(ctx, c, r, vfs.OpenMode{Read: true})
			if err != nil {
				return err
			}
			n, err := h.Read(ctx, c, buf, 0)
			if err == nil && string(buf[:n]) != tokenValue {
				err = fmt.Errorf("read %q", buf[:n])
			}
			if ferr := h.Flush(ctx, c); err == nil {
				err = ferr
			}
			if rerr := h.Release(); err == nil {
				err = rerr
			}
			return err
		})
	})

	b.Run("mount", func(b *testing.B) {
		paths := map[*vfs.Tree]string{
			withPolicy: filepath.Join(mountTree(b, withPolicy), "secrets/TOKEN"),
			bypass:     filepath.Join(mountTree(b, bypass), "secrets/TOKEN"),
		}
		compare(b, func(t *vfs.Tree) error {
			if _, err := os.Stat(paths[t]); err != nil {
				return err
			}
			data, err := os.ReadFile(paths[t])
			if err == nil && string(data) != tokenValue {
				err = fmt.Errorf("read %q", data)
			}
			return err
		})
	})
}

// checkpointTree is the fixture's tree, read by the test process as a
// developer of the project, with its decisions taken by a policy.Index
// holding a realistic organization (withPolicy) or by the bypass.
func checkpointTree(b *testing.B, withPolicy bool) *vfs.Tree {
	fx := newFixture(b.TempDir(), "")
	ix, dev := checkpointIndex(b, fx.store)
	fx.store.AddUser(rootUID, dev, "dev")
	s := decidingStore{Store: fx.store, decide: ix.Decide}
	if !withPolicy {
		s.decide = func(p policy.ID, _ policy.Action, _ policy.Target) policy.Decision {
			return policy.Decision{Allowed: true, By: policy.Binding{Principal: p, Role: policy.RoleProjectsDeveloper, On: project}}
		}
	}
	return vfs.New(s, discardAuditor{}, project, "acme/cats/p1", vfs.WithDatasets(fx.datasets), vfs.WithBuckets(fx.buckets))
}

// The organization of checkpointIndex: communities × projects, each
// project with its resources and bindings of random users, and a few
// bindings per community.
const (
	cpCommunities       = 20
	cpProjects          = 15 // per community: 300 projects
	cpResources         = 20 // per project: 6,000 resources
	cpUsers             = 500
	cpProjectBindings   = 10 // per project: 3,000
	cpCommunityBindings = 5  // per community: 100
)

// checkpointIndex builds a policy.Index of an organization of 300 projects
// and 3,100 bindings, in whose first community sit the fixture's project
// (with every resource s holds, at their IDs) and the project its
// published resources come from. It returns the index and dev, a user who
// is a developer of the fixture's project by one binding on it, like any
// member of a project.
func checkpointIndex(b *testing.B, s *fake.Store) (*policy.Index, policy.ID) {
	ix := policy.NewIndex()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	next := policy.ID(1_000_000) // above the fixture's IDs
	put := func(id policy.ID, k policy.Kind, parent policy.ID, name string) policy.ID {
		if id == 0 {
			next++
			id = next
		}
		must(ix.PutEntity(policy.Entity{ID: id, Kind: k, Parent: parent, Name: name}))
		return id
	}
	users := make([]policy.ID, cpUsers)
	for i := range users {
		next++
		users[i] = next
		must(ix.PutPrincipal(policy.Principal{ID: users[i], Kind: policy.PrincipalUser, Name: fmt.Sprintf("u%d", i)}))
	}
	dev := users[0]
	rnd := rand.New(rand.NewPCG(1, 2))
	grant := func(r policy.Role, on policy.ID) {
		must(ix.Grant(policy.Binding{Principal: users[1+rnd.IntN(cpUsers-1)], Role: r, On: on}))
	}
	projectRoles := []policy.Role{policy.RoleProjectsViewer, policy.RoleProjectsDeveloper, policy.RoleProjectsEditor, policy.RoleProjectsAdmin}
	communityRoles := []policy.Role{policy.RoleCommunitiesViewer, policy.RoleCommunitiesDeveloper, policy.RoleCommunitiesAdmin}
	org := put(0, policy.KindOrg, policy.System, "acme")
	var first policy.ID
	for c := range cpCommunities {
		com := put(0, policy.KindCommunity, org, fmt.Sprintf("c%d", c))
		if c == 0 {
			first = com
		}
		for range cpCommunityBindings {
			grant(communityRoles[rnd.IntN(len(communityRoles))], com)
		}
		for p := range cpProjects {
			proj := put(0, policy.KindProject, com, fmt.Sprintf("p%d", p))
			for r := range cpResources {
				put(0, policy.KindResource, proj, fmt.Sprintf("r%d", r))
			}
			for range cpProjectBindings {
				grant(projectRoles[rnd.IntN(len(projectRoles))], proj)
			}
		}
	}
	// The fixture's project, and the one its published resources are of.
	put(project, policy.KindProject, first, "p1")
	put(project+1, policy.KindProject, first, "p2")
	for _, kind := range []string{vfs.KindDataset, vfs.KindSecret, vfs.KindS3} {
		for _, r := range s.Resources(project, kind) {
			put(r.ID, policy.KindResource, r.Project, r.Name)
			if r.Published {
				must(ix.Publish(r.ID, first))
			}
		}
	}
	for range cpProjectBindings {
		grant(projectRoles[rnd.IntN(len(projectRoles))], project)
	}
	must(ix.Grant(policy.Binding{Principal: dev, Role: policy.RoleProjectsDeveloper, On: project}))
	return ix, dev
}

// decidingStore is the fixture's store with decisions taken by decide.
type decidingStore struct {
	*fake.Store
	decide func(policy.ID, policy.Action, policy.Target) policy.Decision
}

func (s decidingStore) Decide(p policy.ID, a policy.Action, t policy.Target) policy.Decision {
	return s.decide(p, a, t)
}

// discardAuditor drops the audit events: both sides of a comparison
// produce the same ones, and keeping them would grow with b.N.
type discardAuditor struct{}

func (discardAuditor) Record(vfs.Event) {}

// mountTree mounts tree in a fresh directory until the benchmark ends.
func mountTree(b *testing.B, tree *vfs.Tree) string {
	dir := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	m, err := Mount(dir, tree, MountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			b.Errorf("%v; detaching it", err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}
