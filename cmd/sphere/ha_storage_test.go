package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// distMinIO is a 4-node erasure-coded MinIO on 127.0.0.1, started with
// scripts/minio.sh start-dist and stopped when the test ends.
type distMinIO struct {
	dir       string
	endpoints []string // HOST:PORT of each node
}

func startDistMinIO(t *testing.T) *distMinIO {
	t.Helper()
	script, err := filepath.Abs("../../scripts/minio.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := freePortRun(t, 4)
	cmd := exec.Command(script, "start-dist", dir, strconv.Itoa(base))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start-dist: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
	m := &distMinIO{dir: dir}
	for i := 0; i < 4; i++ {
		m.endpoints = append(m.endpoints, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	return m
}

// freePortRun finds n consecutive free ports on 127.0.0.1.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for tries := 0; tries < 50; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := base+n < 65535
		for p := base; ok && p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if ok = err == nil; ok {
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// kill kills MinIO node i (0-based) with SIGKILL.
func (m *distMinIO) kill(t *testing.T, i int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(m.dir, fmt.Sprintf("minio-%d.pid", i+1)))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func (m *distMinIO) client(t *testing.T, i int) *minio.Client {
	t.Helper()
	c, err := minio.New(m.endpoints[i], &minio.Options{Creds: credentials.NewStaticV4("sphereadmin", "spheresecret", "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The HA cluster's storage: three sphere nodes whose datasets live in a
// distributed MinIO, each node mounting the same project. One MinIO node
// dies, the first endpoint of both the blob store and the connector:
// dataset and connector reads go on through every node's mount.
func TestHAMinIONodeDies(t *testing.T) {
	m := startDistMinIO(t)
	blob := []string{"--blob-store", fmt.Sprintf("s3://sphereadmin:spheresecret@%s,%s/sphere-blobs", m.endpoints[0], m.endpoints[1])}
	nodes := []*node{startNode(t, nodeOpts{id: "node1", api: true, extra: blob})}
	for i := 2; i <= 3; i++ {
		nodes = append(nodes, startNode(t, nodeOpts{id: fmt.Sprintf("node%d", i), join: nodes[0], extra: blob}))
	}
	n1 := nodes[0]
	n1.ok(0, "org", "create", "acme")
	n1.ok(0, "community", "create", "acme/cats")
	n1.ok(0, "project", "create", projectPath)
	n1.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n1.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:alice", "--on", "project:"+projectPath)

	// A connector to a bucket on the distributed MinIO, with two of its
	// nodes as endpoints.
	ctx := context.Background()
	c := m.client(t, 1)
	if err := c.MakeBucket(ctx, "shared", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	objects := map[string][]byte{"before.bin": randomBytes(t, 3<<20), "after.bin": randomBytes(t, 3<<20)}
	for k, v := range objects {
		if _, err := c.PutObject(ctx, "shared", k, bytes.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runAsOK(t, n1, 0, []byte("spheresecret"), "secret", "create", projectPath, "S3_KEY")
	n1.ok(0, "s3", "create", projectPath, "shared", "--endpoint", "http://"+m.endpoints[0]+",http://"+m.endpoints[1], "--bucket", "shared", "--key-id", "sphereadmin", "--key-secret", "S3_KEY")
	n1.ok(0, "s3", "activate", projectPath, "shared")

	// A sealed dataset: one file read before the failure, one only after,
	// so the second comes from the blob store on every node.
	src := filepath.Join(n1.dir, "src")
	os.MkdirAll(src, 0o755)
	files := map[string][]byte{"before.bin": randomBytes(t, 9<<20), "after.bin": randomBytes(t, 9<<20)}
	for k, v := range files {
		os.WriteFile(filepath.Join(src, k), v, 0o644)
	}
	n1.ok(0, "dataset", "create", projectPath, "shards", "--from", src)
	n1.ok(0, "dataset", "seal", projectPath, "shards")

	mnts := make([]string, len(nodes))
	for i, n := range nodes {
		mnts[i] = filepath.Join(n.dir, "mnt")
		n.ok(0, "--consistent", "mount", projectPath, mnts[i])
	}
	read := func(node int, path string, want []byte) {
		t.Helper()
		got, err := sh(t, uidAlice, "cat "+filepath.Join(mnts[node], path))
		if err != nil || !bytes.Equal([]byte(got), want) {
			t.Errorf("node%d: %s: %d bytes, %v", node+1, path, len(got), err)
		}
	}
	for i := range nodes {
		read(i, "datasets/shards/before.bin", files["before.bin"])
		read(i, "s3/shared/before.bin", objects["before.bin"])
	}
	m.kill(t, 0)
	start := time.Now()
	for i := range nodes {
		read(i, "datasets/shards/after.bin", files["after.bin"])
		read(i, "s3/shared/after.bin", objects["after.bin"])
		read(i, "datasets/shards/before.bin", files["before.bin"])
	}
	t.Logf("reads after the MinIO node died took %v", time.Since(start))
}

// A role revoked through one node denies the next operation in the mounts
// of the other nodes within a second.
func TestHARevocationReachesEveryMount(t *testing.T) {
	nodes := startCluster(t, 3, false)
	n1 := nodes[0]
	n1.ok(0, "org", "create", "acme")
	n1.ok(0, "community", "create", "acme/cats")
	n1.ok(0, "project", "create", projectPath)
	n1.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n1.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:alice", "--on", "project:"+projectPath)
	runAsOK(t, n1, 0, []byte("s3cr3t"), "secret", "create", projectPath, "TOKEN")
	var mnts []string
	for _, n := range nodes[1:] {
		mnt := filepath.Join(n.dir, "mnt")
		n.ok(0, "--consistent", "mount", projectPath, mnt)
		if out, err := sh(t, uidAlice, "cat "+mnt+"/secrets/TOKEN"); err != nil || out != "s3cr3t" {
			t.Fatalf("before revocation: %q %v", out, err)
		}
		mnts = append(mnts, mnt)
	}
	n1.ok(0, "role", "revoke", "datasphere.community-projects.developer", "--from", "user:alice", "--on", "project:"+projectPath)
	revoked := time.Now()
	for _, mnt := range mnts {
		for {
			_, err := sh(t, uidAlice, "cat "+mnt+"/secrets/TOKEN")
			if err != nil {
				break
			}
			if time.Since(revoked) > time.Second {
				t.Fatalf("%s still serves alice a second after the revocation", mnt)
			}
		}
	}
	t.Logf("revocation reached every mount in %v", time.Since(revoked))
}
