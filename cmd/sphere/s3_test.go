package main

import (
	"encoding/json"
	"strings"
	"testing"

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
