package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/internal/testwait"
	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

// blobStores are the two places dataset bytes live: the node's local folder
// (the default) and a real MinIO bucket.
func blobStores(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"local": func(*testing.T) []string { return nil },
		"minio": func(t *testing.T) []string {
			m := miniotest.Start(t)
			host := strings.TrimPrefix(m.Endpoint, "http://")
			return []string{"--blob-store", fmt.Sprintf("s3://%s:%s@%s/sphere-blobs", m.AccessKey, m.SecretKey, host)}
		},
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return fmt.Sprintf("%x", s) }

// uidOutsider is eve in sharingFixture: registered, a developer only in
// another community's project.
const uidOutsider uint32 = 1004

// sharingFixture builds what publishing needs, as root: org acme with
// communities cats and dogs, projects acme/cats/vision, acme/cats/audio and
// acme/dogs/barks, each mounted (the paths it returns); alice editor of
// vision and developer of cats (so she may publish), bob viewer of vision,
// carol developer of audio, eve developer of barks.
func sharingFixture(n *node) map[string]string {
	n.t.Helper()
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "community", "create", "acme/dogs")
	mnt := map[string]string{}
	for _, p := range []string{"acme/cats/vision", "acme/cats/audio", "acme/dogs/barks"} {
		n.ok(0, "project", "create", p)
		mnt[p] = filepath.Join(n.dir, strings.ReplaceAll(p, "/", "-"))
		n.ok(0, "mount", p, mnt[p])
	}
	for user, uid := range map[string]uint32{"alice": uidAlice, "bob": uidBob, "carol": uidCarol, "eve": uidOutsider} {
		n.ok(0, "user", "add", user, "--uid", fmt.Sprint(uid))
	}
	n.ok(0, "role", "grant", "datasphere.community-projects.editor", "--to", "user:alice", "--on", "project:acme/cats/vision")
	n.ok(0, "role", "grant", "datasphere.communities.developer", "--to", "user:alice", "--on", "community:acme/cats")
	n.ok(0, "role", "grant", "datasphere.community-projects.viewer", "--to", "user:bob", "--on", "project:acme/cats/vision")
	n.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:carol", "--on", "project:acme/cats/audio")
	n.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:eve", "--on", "project:acme/dogs/barks")
	return mnt
}

// The lifecycle, through the mount and the CLI, as other uids, on both
// blob stores: write, upload --from, seal, read back byte for byte, EROFS
// after sealing, published into another project of the community only.
func TestDatasetLifecycle(t *testing.T) {
	for name, store := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			n := startNode(t, nodeOpts{extra: store(t)})
			mnt := sharingFixture(n)
			vision := mnt["acme/cats/vision"]

			// Through the mount: mkdir creates the dataset, files are written as alice.
			big, small := randomBytes(t, 9<<20+123), []byte("label,cat\n1,yes\n")
			if _, err := sh(t, uidAlice, "mkdir "+vision+"/datasets/images && mkdir "+vision+"/datasets/images/train"); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(n.dir, "src")
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
			if _, err := sh(t, uidAlice, "cp "+src+"/big.bin "+vision+"/datasets/images/train/big.bin && printf 'label,cat\\n1,yes\\n' > "+vision+"/datasets/images/labels.csv"); err != nil {
				t.Fatal(err)
			}
			// With --from, as alice, from a folder she can read.
			upload := filepath.Join(n.dir, "upload")
			os.MkdirAll(filepath.Join(upload, "nested"), 0o755)
			os.WriteFile(filepath.Join(upload, "a.txt"), []byte("alpha"), 0o644)
			os.WriteFile(filepath.Join(upload, "nested", "b.bin"), big[:5<<20], 0o644)
			out := n.ok(uidAlice, "dataset", "create", "acme/cats/vision", "texts", "--from", upload, "--size", "100M")
			if !strings.Contains(out, "files:") || !strings.Contains(out, "2") {
				t.Errorf("dataset create --from:\n%s", out)
			}
			var shown entity
			n.jsonOut(uidAlice, &shown, "dataset", "show", "acme/cats/vision", "texts")
			if shown.Settings["state"] != "initializing" {
				t.Errorf("state %+v", shown.Settings)
			}
			n.ok(uidAlice, "dataset", "seal", "acme/cats/vision", "images")
			n.ok(uidAlice, "dataset", "seal", "acme/cats/vision", "texts")

			// Read back byte for byte, as other uids.
			for _, c := range []struct {
				path string
				want []byte
			}{
				{"images/train/big.bin", big}, {"images/labels.csv", small}, {"texts/a.txt", []byte("alpha")}, {"texts/nested/b.bin", big[:5<<20]},
			} {
				got, err := sh(t, uidAlice, "cat "+vision+"/datasets/"+c.path)
				if err != nil || sum([]byte(got)) != sum(c.want) {
					t.Errorf("alice reads %s: %d bytes, sha %s, want %s (%v)", c.path, len(got), sum([]byte(got))[:8], sum(c.want)[:8], err)
				}
			}
			if out, err := sh(t, uidBob, "ls "+vision+"/datasets/images"); err != nil || !strings.Contains(out, "labels.csv") {
				t.Errorf("viewer lists the dataset: %q %v", out, err)
			}
			if _, err := sh(t, uidBob, "cat "+vision+"/datasets/images/labels.csv"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
				t.Errorf("viewer reads a dataset file: %v", err)
			}
			// Sealed: read-only and immutable.
			for _, w := range []string{
				"printf x > " + vision + "/datasets/images/new.txt",
				"printf x >> " + vision + "/datasets/images/labels.csv",
				"rm " + vision + "/datasets/images/labels.csv",
				"mkdir " + vision + "/datasets/images/more",
			} {
				if _, err := sh(t, uidAlice, w); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
					t.Errorf("%s on a sealed dataset: %v, want Read-only file system", w, err)
				}
			}
			// Published: readable from another project of the community, not elsewhere.
			audio, barks := mnt["acme/cats/audio"], mnt["acme/dogs/barks"]
			n.ok(uidAlice, "share", "resource:acme/cats/vision/datasets/images", "--community", "acme/cats")
			if got, err := sh(t, uidCarol, "cat "+audio+"/datasets/images/train/big.bin"); err != nil || sum([]byte(got)) != sum(big) {
				t.Errorf("carol reads the published dataset from her project: %d bytes %v", len(got), err)
			}
			if _, err := sh(t, uidCarol, "printf x > "+audio+"/datasets/images/x"); err == nil || !strings.Contains(err.Error(), "Read-only") {
				t.Errorf("writing a published dataset: %v", err)
			}
			if out, err := sh(t, uidOutsider, "ls "+barks+"/datasets"); err != nil || strings.Contains(out, "images") {
				t.Errorf("another community sees the dataset: %q %v", out, err)
			}
			n.ok(uidAlice, "unshare", "resource:acme/cats/vision/datasets/images", "--community", "acme/cats")
			if out, _ := sh(t, uidCarol, "ls "+audio+"/datasets"); strings.Contains(out, "images") {
				t.Errorf("unpublished dataset still listed: %q", out)
			}
		})
	}
}

// A dataset's size limit: writes past it fail with ENOSPC.
func TestDatasetSizeLimit(t *testing.T) {
	p := newProject(t, "v")
	p.ok(uidAlice, "dataset", "create", projectPath, "small", "--size", "64K")
	_, err := sh(t, uidAlice, "head -c 100000 /dev/zero > "+p.mnt+"/datasets/small/big")
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("writing past the limit: %v, want No space left on device", err)
	}
	// Like a full disk, what fit stays; removing it makes room again.
	var ds entity
	p.jsonOut(0, &ds, "dataset", "show", projectPath, "small")
	if raw, _ := os.ReadFile(p.mnt + "/datasets/small/big"); len(raw) > 64<<10 {
		t.Errorf("the refused file holds %d bytes, over the limit", len(raw))
	}
	if _, err := sh(t, uidAlice, "rm "+p.mnt+"/datasets/small/big && head -c 1000 /dev/zero > "+p.mnt+"/datasets/small/fits"); err != nil {
		t.Errorf("a write within the limit: %v", err)
	}

	// The limit changes with `dataset set`: lowered below what the dataset
	// holds, it refuses the next write and deletes nothing; 0 removes it.
	p.fails(uidBob, 3, "permission denied", "dataset", "set", projectPath, "small", "--size", "1M")
	p.fails(uidAlice, 2, "--size", "dataset", "set", projectPath, "small", "--size", "lots")
	p.fails(uidAlice, 2, "give at least one", "dataset", "set", projectPath, "small")
	var lowered entity
	p.jsonOut(uidAlice, &lowered, "dataset", "set", projectPath, "small", "--size", "512", "--description", "tiny")
	if lowered.Settings["size-limit"] != "512" || lowered.Description != "tiny" {
		t.Errorf("after set: %+v", lowered)
	}
	if _, err := sh(t, uidAlice, "printf x > "+p.mnt+"/datasets/small/more"); err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("writing over a lowered limit: %v, want No space left on device", err)
	}
	if raw, err := os.ReadFile(p.mnt + "/datasets/small/fits"); err != nil || len(raw) != 1000 {
		t.Errorf("lowering the limit touched what was there: %d bytes %v", len(raw), err)
	}
	var unlimited entity
	p.jsonOut(uidAlice, &unlimited, "dataset", "set", projectPath, "small", "--size", "0")
	if _, ok := unlimited.Settings["size-limit"]; ok || unlimited.Description != "tiny" {
		t.Errorf("--size 0: %+v, want no limit and the description kept", unlimited)
	}
	if _, err := sh(t, uidAlice, "head -c 100000 /dev/zero > "+p.mnt+"/datasets/small/big"); err != nil {
		t.Errorf("a write with no limit: %v", err)
	}
}

// A corrupted chunk in the blob store is EIO and a log line, never wrong
// bytes; the cache's size bound holds.
func TestDatasetCorruptionAndCacheBound(t *testing.T) {
	n := startNode(t, nodeOpts{extra: []string{"--cache-size", "8M"}})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", projectPath)
	src := filepath.Join(n.dir, "src")
	os.MkdirAll(src, 0o755)
	data := randomBytes(t, 20<<20)
	os.WriteFile(filepath.Join(src, "data.bin"), data, 0o644)
	os.WriteFile(filepath.Join(src, "victim.bin"), randomBytes(t, 1<<20), 0o644)
	n.ok(0, "dataset", "create", projectPath, "ds", "--from", src)
	n.ok(0, "dataset", "seal", projectPath, "ds")
	mnt := filepath.Join(n.dir, "mnt")
	n.ok(0, "mount", projectPath, mnt)

	got, err := os.ReadFile(mnt + "/datasets/ds/data.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes %v", len(got), err)
	}
	var used int64
	filepath.WalkDir(filepath.Join(n.dataDir, "cache"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				used += fi.Size()
			}
		}
		return nil
	})
	if used > 8<<20 {
		t.Errorf("the cache holds %d bytes, over its 8 MiB bound", used)
	}

	// Flip a byte in every stored chunk of victim.bin's size (1 MiB).
	var flipped int
	filepath.WalkDir(filepath.Join(n.dataDir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, _ := d.Info(); fi.Size() == 1<<20 {
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 0xff
			os.WriteFile(path, b, 0o644)
			flipped++
		}
		return nil
	})
	if flipped == 0 {
		t.Fatal("found no chunk of victim.bin in the blob store")
	}
	got, err = os.ReadFile(mnt + "/datasets/ds/victim.bin")
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("reading a corrupted file: %d bytes, %v; want EIO", len(got), err)
	}
	if !strings.Contains(n.log.String(), "corrupt") {
		t.Errorf("no log line about the corrupt chunk:\n%s", n.log)
	}
}

// sweepReport is `sphere cluster sweep --output json`.
type sweepReport struct {
	Epoch                                     uint64
	Blobs, Referenced, Fresh, Doomed, Deleted int
	DoomedBytes                               int64 `json:"doomed_bytes"`
	DeletedBytes                              int64 `json:"deleted_bytes"`
}

// Deleted data leaves the blob store when swept, and nothing else does:
// chunks a kept dataset shares with a deleted one stay, the kept data reads
// back from the blob store alone, and the deleted content can be written
// again afterwards.
func TestSweepFreesDeletedData(t *testing.T) {
	for name, store := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			n := startNode(t, nodeOpts{extra: store(t)})
			n.ok(0, "org", "create", "acme")
			n.ok(0, "community", "create", "acme/cats")
			n.ok(0, "project", "create", "acme/cats/vision")
			mnt := filepath.Join(n.dir, "vision")
			n.ok(0, "mount", "acme/cats/vision", mnt)

			// 5 MiB shared by both datasets (2 chunks), 3 MiB only in "drop" (1 chunk).
			shared, only := randomBytes(t, 5<<20), randomBytes(t, 3<<20)
			dirs := map[string]map[string][]byte{"keep": {"a.bin": shared}, "drop": {"a.bin": shared, "b.bin": only}}
			for ds, files := range dirs {
				src := filepath.Join(n.dir, "src-"+ds)
				os.MkdirAll(src, 0o755)
				for f, data := range files {
					os.WriteFile(filepath.Join(src, f), data, 0o644)
				}
				n.ok(0, "dataset", "create", "acme/cats/vision", ds, "--from", src)
				n.ok(0, "dataset", "seal", "acme/cats/vision", ds)
			}
			var r sweepReport
			sweep := func(args ...string) {
				t.Helper()
				r = sweepReport{}
				n.jsonOut(0, &r, append([]string{"cluster", "sweep"}, args...)...)
			}
			sweep("--grace", "0", "--dry-run")
			if r.Blobs != 3 || r.Referenced != 3 || r.Doomed != 0 {
				t.Fatalf("before deleting: %+v, want 3 blobs, all referenced", r)
			}

			n.ok(0, "dataset", "delete", "acme/cats/vision", "drop")
			sweep("--grace", "0", "--dry-run")
			if r.Blobs != 3 || r.Doomed != 1 || r.DoomedBytes != 3<<20 || r.Deleted != 0 {
				t.Fatalf("dry run after deleting: %+v, want 1 blob of 3 MiB to go, none gone", r)
			}
			n.fails(uidAlice, 3, "permission denied", "cluster", "sweep")
			n.fails(0, 2, "--grace", "cluster", "sweep", "--grace", "-1s")
			sweep("--grace", "1h")
			if r.Fresh != 1 || r.Deleted != 0 {
				t.Fatalf("within the grace: %+v, want the blob spared", r)
			}
			sweep("--grace", "0")
			if r.Deleted != 1 || r.DeletedBytes != 3<<20 || r.Epoch != 2 {
				t.Fatalf("sweep: %+v, want 1 blob of 3 MiB deleted, generation 2", r)
			}

			// The kept dataset reads back from the blob store alone.
			n.stop()
			if err := os.RemoveAll(filepath.Join(n.dataDir, "cache")); err != nil {
				t.Fatal(err)
			}
			n.restart()
			if got, err := sh(t, 0, "cat "+mnt+"/datasets/keep/a.bin"); err != nil || sum([]byte(got)) != sum(shared) {
				t.Fatalf("the kept dataset after the sweep: %d bytes, %v", len(got), err)
			}

			// What was deleted can be written again, in the new generation.
			n.ok(0, "dataset", "create", "acme/cats/vision", "again", "--from", filepath.Join(n.dir, "src-drop"))
			if got, err := sh(t, 0, "cat "+mnt+"/datasets/again/b.bin"); err != nil || sum([]byte(got)) != sum(only) {
				t.Fatalf("the deleted content written again: %d bytes, %v", len(got), err)
			}
			sweep("--grace", "0")
			if r.Blobs != 3 || r.Referenced != 3 || r.Deleted != 0 {
				t.Errorf("after writing it again: %+v, want 3 blobs (the shared 2 named again, the other uploaded anew), all referenced", r)
			}
			if name == "local" {
				if again, _ := filepath.Glob(filepath.Join(n.dataDir, "blobs", "*", "*-2")); len(again) != 1 {
					t.Errorf("blobs of generation 2: %v, want the one uploaded anew", again)
				}
			}
		})
	}
}

// With --sweep-every the leader sweeps by itself.
func TestSweepRunsByItself(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", "acme/cats/vision")
	src := filepath.Join(n.dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.bin"), randomBytes(t, 1<<20), 0o644)
	n.ok(0, "dataset", "create", "acme/cats/vision", "gone", "--from", src)
	n.ok(0, "dataset", "delete", "acme/cats/vision", "gone")
	blobs := func() []string {
		found, _ := filepath.Glob(filepath.Join(n.dataDir, "blobs", "*", "*"))
		return found
	}
	if len(blobs()) != 1 {
		t.Fatalf("blobs before sweeping: %v", blobs())
	}
	n.stop()
	n.extra = append(n.extra, "--sweep-every", "100ms", "--sweep-grace", "0")
	n.restart()
	// The log line comes after the deletes.
	testwait.For(t, 10*time.Second, "the leader to sweep the deleted dataset's blob and say so", func() bool {
		return len(blobs()) == 0 && strings.Contains(n.log.String(), "swept the blob store")
	})
}
