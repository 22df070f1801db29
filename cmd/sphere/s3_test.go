package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

// connectorProject is a mounted project with MinIO, a bucket "data" and the
// bucket's key stored as the project secret S3_KEY.
type connectorProject struct {
	*project
	minio *miniotest.Server
}

func newConnectorProject(t *testing.T) *connectorProject {
	t.Helper()
	m := miniotest.Start(t)
	m.MakeBucket(t, "data")
	p := newProject(t, "unused")
	runAsOK(t, p.node, 0, []byte(m.SecretKey), "secret", "create", projectPath, "S3_KEY")
	return &connectorProject{project: p, minio: m}
}

func (cp *connectorProject) create(t *testing.T, name, mode string) {
	t.Helper()
	cp.ok(0, "s3", "create", projectPath, name, "--endpoint", cp.minio.Endpoint, "--bucket", "data",
		"--key-id", cp.minio.AccessKey, "--key-secret", "S3_KEY", "--mode", mode, "--description", "training data")
}

// A connector holds every field the seed lists, and wrong endpoints,
// buckets or credentials are refused at creation with a clear error.
func TestS3ConnectorFields(t *testing.T) {
	cp := newConnectorProject(t)
	runAsOK(t, cp.node, 0, []byte("not-the-key"), "secret", "create", projectPath, "WRONG_KEY")
	base := []string{"s3", "create", projectPath, "bad", "--endpoint", cp.minio.Endpoint, "--bucket", "data", "--key-id", cp.minio.AccessKey, "--key-secret", "S3_KEY"}
	with := func(flag, value string) []string {
		out := append([]string{}, base...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
			}
		}
		return out
	}
	tests := []struct {
		args []string
		code int
		rule string
	}{
		{with("--endpoint", "ftp://127.0.0.1:1"), 2, "endpoint"},
		{with("--endpoint", "http://user:pw@127.0.0.1:9000"), 2, "endpoint"},
		{with("--endpoint", cp.minio.Endpoint+",https://127.0.0.1:1"), 2, "same scheme"},
		{with("--endpoint", cp.minio.Endpoint+","+cp.minio.Endpoint), 2, "twice"},
		{with("--bucket", "Data_Bucket"), 2, "bucket"},
		{with("--bucket", "ab"), 2, "bucket"},
		{with("--bucket", "192.168.1.1"), 2, "bucket"},
		{with("--bucket", "missing-bucket"), 2, "bucket"},
		{with("--key-id", "nobody"), 2, "key id"},
		{with("--key-secret", "WRONG_KEY"), 2, "secret"},
		{with("--key-secret", "NO_SUCH"), 2, "NO_SUCH"},
		{append(append([]string{}, base...), "--mode", "rwx"), 2, "--mode"},
	}
	for _, tt := range tests {
		cp.fails(0, tt.code, tt.rule, tt.args...)
	}
	if out := cp.ok(0, "s3", "list", projectPath); strings.Contains(out, "/bad") {
		t.Errorf("a refused connector was created:\n%s", out)
	}
	cp.fails(uidBob, 3, "permission denied", "s3", "create", projectPath, "mine", "--endpoint", cp.minio.Endpoint, "--bucket", "data", "--key-id", cp.minio.AccessKey, "--key-secret", "S3_KEY")

	cp.create(t, "train", "rw")
	var e entity
	cp.jsonOut(0, &e, "s3", "show", projectPath, "train")
	raw, _ := json.Marshal(e)
	for _, want := range []string{cp.minio.Endpoint, `"bucket":"data"`, cp.minio.AccessKey, `"key-secret":"S3_KEY"`, `"mode":"rw"`, `"backend":"s3"`, `"active":"false"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("connector lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(string(raw), cp.minio.SecretKey) {
		t.Errorf("the connector shows its key's value: %s", raw)
	}
	if e.Creator != "root" {
		t.Errorf("creator %q", e.Creator)
	}
	cp.ok(0, "s3", "activate", projectPath, "train")
	cp.jsonOut(0, &e, "s3", "show", projectPath, "train")
	if e.Settings["active"] != "true" {
		t.Errorf("not active after activate: %+v", e.Settings)
	}
	cp.fails(uidBob, 3, "permission denied", "s3", "deactivate", projectPath, "train")
}

// The bucket in the mount: listing, large and small reads checked by hash,
// writes and overwrites seen through minio-go, EROFS on a read-only
// connector, EACCES for a viewer, activation making s3/NAME appear and vanish.
func TestS3InTheMount(t *testing.T) {
	cp := newConnectorProject(t)
	ctx := context.Background()
	mc := cp.minio.Client()
	big := randomBytes(t, 40<<20+7)
	for key, data := range map[string][]byte{"big.bin": big, "dir/small.txt": []byte("small"), "dir/sub/deep.txt": []byte("deep")} {
		if _, err := mc.PutObject(ctx, "data", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cp.create(t, "train", "rw")
	cp.create(t, "archive", "ro")
	s3dir := filepath.Join(cp.mnt, "s3")
	if out, _ := sh(t, uidAlice, "ls "+s3dir); strings.TrimSpace(out) != "" {
		t.Errorf("inactive connectors are listed: %q", out)
	}
	cp.ok(0, "s3", "activate", projectPath, "train")
	cp.ok(0, "s3", "activate", projectPath, "archive")
	if out, err := sh(t, uidAlice, "ls "+s3dir); err != nil || strings.Fields(out)[0] != "archive" || strings.Fields(out)[1] != "train" {
		t.Fatalf("activated connectors: %q %v", out, err)
	}
	train := filepath.Join(s3dir, "train")
	if out, err := sh(t, uidAlice, "ls "+train+" "+train+"/dir"); err != nil || !strings.Contains(out, "big.bin") || !strings.Contains(out, "small.txt") || !strings.Contains(out, "sub") {
		t.Errorf("listing: %q %v", out, err)
	}
	if out, err := sh(t, uidAlice, "ls -l "+train); err != nil || !strings.Contains(out, fmt.Sprint(len(big))) {
		t.Errorf("ls -l shows sizes: %q %v", out, err)
	}
	if got, err := sh(t, uidAlice, "cat "+train+"/big.bin"); err != nil || sum([]byte(got)) != sum(big) {
		t.Errorf("large read: %d bytes %v", len(got), err)
	}
	if got, err := sh(t, uidAlice, "cat "+train+"/dir/sub/deep.txt"); err != nil || got != "deep" {
		t.Errorf("small read: %q %v", got, err)
	}

	// Writes stream to the bucket and are visible there after close.
	upload := randomBytes(t, 20<<20+3)
	src := filepath.Join(cp.dir, "upload.bin")
	os.WriteFile(src, upload, 0o644)
	if _, err := sh(t, uidAlice, "mkdir "+train+"/new && cp "+src+" "+train+"/new/upload.bin && printf one > "+train+"/over.txt && printf two > "+train+"/over.txt"); err != nil {
		t.Fatalf("writes: %v", err)
	}
	for key, want := range map[string][]byte{"new/upload.bin": upload, "over.txt": []byte("two")} {
		obj, err := mc.GetObject(ctx, "data", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || sum(got) != sum(want) {
			t.Errorf("%s through minio-go: %d bytes %v", key, len(got), err)
		}
	}
	if _, err := sh(t, uidAlice, "rm "+train+"/over.txt"); err != nil {
		t.Errorf("rm: %v", err)
	}
	if _, err := mc.StatObject(ctx, "data", "over.txt", minio.StatObjectOptions{}); err == nil {
		t.Errorf("rm through the mount left the object")
	}
	// Read-only connector, viewer, anonymous.
	if _, err := sh(t, uidAlice, "printf x > "+s3dir+"/archive/x.txt"); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Errorf("write on a read-only connector: %v", err)
	}
	if got, err := sh(t, uidAlice, "cat "+s3dir+"/archive/dir/small.txt"); err != nil || got != "small" {
		t.Errorf("read on a read-only connector: %q %v", got, err)
	}
	// Its mode changes with `s3 set`, for the mount's next operation.
	cp.fails(0, 2, "--mode", "s3", "set", projectPath, "archive", "--mode", "rwx")
	cp.ok(0, "s3", "set", projectPath, "archive", "--mode", "rw")
	if _, err := sh(t, uidAlice, "printf x > "+s3dir+"/archive/x.txt"); err != nil {
		t.Errorf("write once the connector is read-write: %v", err)
	}
	cp.ok(0, "s3", "set", projectPath, "archive", "--mode", "ro", "--description", "frozen")
	if _, err := sh(t, uidAlice, "rm "+s3dir+"/archive/x.txt"); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Errorf("rm once the connector is read-only again: %v", err)
	}
	if _, err := sh(t, uidBob, "cat "+train+"/dir/small.txt"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("viewer reads a bucket: %v", err)
	}
	if _, err := sh(t, uidEve, "ls "+train); err == nil {
		t.Errorf("an unregistered uid lists a bucket")
	}
	cp.ok(0, "s3", "deactivate", projectPath, "train")
	if out, _ := sh(t, uidAlice, "ls "+s3dir); strings.Contains(out, "train") {
		t.Errorf("deactivated connector still listed: %q", out)
	}
}

// MinIO killed mid-read: the reader gets EIO within the configured bound,
// and no process hangs.
func TestS3MinIODownGivesEIO(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "data")
	n := startNode(t, nodeOpts{extra: []string{"--s3-timeout", "2s"}})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", projectPath)
	runAsOK(t, n, 0, []byte(m.SecretKey), "secret", "create", projectPath, "S3_KEY")
	n.ok(0, "s3", "create", projectPath, "train", "--endpoint", m.Endpoint, "--bucket", "data", "--key-id", m.AccessKey, "--key-secret", "S3_KEY")
	n.ok(0, "s3", "activate", projectPath, "train")
	big := randomBytes(t, 64<<20)
	if _, err := m.Client().PutObject(context.Background(), "data", "big.bin", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(n.dir, "mnt")
	n.ok(0, "mount", projectPath, mnt)
	f, err := os.Open(mnt + "/s3/train/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	start := time.Now()
	var readErr error
	for readErr == nil {
		_, readErr = f.Read(buf)
	}
	if !errors.Is(readErr, syscall.EIO) {
		t.Errorf("read after MinIO died: %v, want EIO", readErr)
	}
	if d := time.Since(start); d > 2*time.Second+2*time.Second {
		t.Errorf("EIO took %v; the bound is 2s", d)
	}
	start = time.Now()
	if _, err := os.ReadDir(mnt + "/s3/train/dir-never-listed"); err == nil {
		t.Errorf("listing with MinIO down succeeded")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("listing with MinIO down took %v", d)
	}
	if !strings.Contains(n.log.String(), "unavailable") {
		t.Errorf("no log line says why:\n%s", n.log)
	}
}
