package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// resource is a resource as `--output json` shows it, with its descriptor.
type resource struct {
	entity
	Owner string          `json:"owner"`
	Files int             `json:"files"`
	Spec  json.RawMessage `json:"spec"`
}

// field decodes one field of the descriptor.
func (r resource) field(t *testing.T, name string, v any) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Spec, &fields); err != nil {
		t.Fatalf("%s: descriptor %s: %v", r.Path, r.Spec, err)
	}
	if err := json.Unmarshal(fields[name], v); err != nil {
		t.Fatalf("%s: field %s of %s: %v", r.Path, name, r.Spec, err)
	}
}

// Each kind through the CLI and a real mount, as other uids: created,
// listed, read as a descriptor, updated, published into another project of
// the community (and not beyond it), refused while referred to, deleted.
func TestResourceKinds(t *testing.T) {
	n := startNode(t, nodeOpts{})
	mnt := sharingFixture(n)
	const p = "acme/cats/vision"
	vision, audio, barks := mnt[p], mnt["acme/cats/audio"], mnt["acme/dogs/barks"]

	// Created, as alice.
	dockerfile := filepath.Join(n.dir, "Dockerfile")
	os.WriteFile(dockerfile, []byte("FROM python:3.11-slim\nRUN pip install torch\n"), 0o644)
	n.ok(uidAlice, "image", "create", p, "torch", "--registry", "cr.yandex/crp1/torch:2.1", "--description", "PyTorch")
	n.ok(uidAlice, "image", "create", p, "custom", "--dockerfile", dockerfile, "--tag", "v1")
	n.ok(uidAlice, "node", "create", p, "serve", "--kind", "docker", "--image", "torch", "--instance", "g1.1")
	n.ok(uidAlice, "node", "create", p, "py", "--kind", "python", "--instance", "c1.4", "--instances", "2")
	n.ok(uidAlice, "alias", "create", p, "prod", "--node", "serve=70", "--node", "py=30")
	n.ok(uidAlice, "dataproc-template", "create", p, "etl", "--version", "2.1", "--services", "hdfs,yarn,spark",
		"--host-group", "master:masternode:s2.micro:20:1", "--host-group", "data:datanode:s2.small:100:3")
	weights := randomBytes(t, 3<<20)
	src := filepath.Join(n.dir, "model")
	os.MkdirAll(filepath.Join(src, "tokenizer"), 0o755)
	os.WriteFile(filepath.Join(src, "weights.bin"), weights, 0o644)
	os.WriteFile(filepath.Join(src, "tokenizer", "vocab.txt"), []byte("cat\ndog\n"), 0o644)
	if out := n.ok(uidAlice, "model", "create", p, "resnet", "--from", src, "--produced-by", "notebook train.ipynb, cell 4"); !strings.Contains(out, "produced-by:") || !strings.Contains(out, "sealed") {
		t.Errorf("model create:\n%s", out)
	}

	// Shown and listed, with their descriptors.
	var img, custom, node, alias, tmpl, model resource
	n.jsonOut(uidBob, &img, "image", "show", p, "torch")
	n.jsonOut(uidBob, &custom, "image", "show", p, "custom")
	n.jsonOut(uidBob, &node, "node", "show", p, "serve")
	n.jsonOut(uidBob, &alias, "alias", "show", p, "prod")
	n.jsonOut(uidBob, &tmpl, "dataproc-template", "show", p, "etl")
	n.jsonOut(uidBob, &model, "model", "show", p, "resnet")
	var state, tag, endpoint, producedBy string
	img.field(t, "state", &state)
	custom.field(t, "tag", &tag)
	if state != "ready" || tag != "v1" {
		t.Errorf("images: state %q, tag %q", state, tag)
	}
	custom.field(t, "state", &state)
	if state != "pending" {
		t.Errorf("a Dockerfile image's state %q, want pending", state)
	}
	node.field(t, "endpoint", &endpoint)
	var res struct{ GPU string }
	node.field(t, "resources", &res)
	if !strings.HasPrefix(endpoint, "https://node-") || res.GPU != "V100" {
		t.Errorf("node: endpoint %q, resources %+v", endpoint, res)
	}
	var services []string
	tmpl.field(t, "services", &services)
	if strings.Join(services, ",") != "HDFS,SPARK,YARN" {
		t.Errorf("template services %q", services)
	}
	model.field(t, "produced_by", &producedBy)
	if model.Files != 2 || model.Settings["state"] != "sealed" || producedBy != "notebook train.ipynb, cell 4" {
		t.Errorf("model: %d files, settings %v, produced by %q", model.Files, model.Settings, producedBy)
	}
	var list []resource
	n.jsonOut(uidBob, &list, "image", "list", p)
	if len(list) != 2 || list[0].Name != "custom" || list[1].Name != "torch" {
		t.Errorf("image list: %+v", list)
	}
	if out := n.ok(uidBob, "node", "show", p, "serve"); !strings.Contains(out, "endpoint:") || !strings.Contains(out, "instance:") {
		t.Errorf("node show:\n%s", out)
	}
	// Nobody outside learns they exist.
	n.fails(uidOutsider, 4, "not found", "node", "show", p, "serve")
	n.fails(uidBob, 3, "permission denied", "node", "create", p, "other", "--kind", "python", "--instance", "c1.4")

	// Bad fields: a clear error, nothing created.
	for _, c := range []struct {
		want string
		args []string
	}{
		{"invalid registry reference", []string{"image", "create", p, "x", "--registry", "Not A/Reference!"}},
		{"exactly one source", []string{"image", "create", p, "x"}},
		{"invalid image tag", []string{"image", "create", p, "x", "--registry", "ubuntu", "--tag", ".bad"}},
		{"python or docker", []string{"node", "create", p, "x", "--kind", "java", "--instance", "c1.4"}},
		{"invalid instance configuration", []string{"node", "create", p, "x", "--kind", "python", "--instance", "huge"}},
		{`names image "nope"`, []string{"node", "create", p, "x", "--kind", "docker", "--image", "nope", "--instance", "c1.4"}},
		{"must add up to 100", []string{"alias", "create", p, "x", "--node", "serve=50", "--node", "py=20"}},
		{`names node "gone"`, []string{"alias", "create", p, "x", "--node", "gone=100"}},
		{"NODE=WEIGHT", []string{"alias", "create", p, "x", "--node", "serve"}},
		{"exactly one masternode group", []string{"dataproc-template", "create", p, "x", "--version", "2.1", "--services", "yarn", "--host-group", "c:computenode:s2.micro:20:2"}},
		{"invalid Data Proc version", []string{"dataproc-template", "create", p, "x", "--version", "1.0", "--services", "yarn", "--host-group", "m:masternode:s2.micro:20:1"}},
		{"NAME:ROLE:PRESET:DISK_GB:HOSTS", []string{"dataproc-template", "create", p, "x", "--host-group", "m:masternode"}},
		{"--produced-by", []string{"model", "create", p, "x", "--from", src}},
		{"invalid name", []string{"image", "create", p, "Bad_Name", "--registry", "ubuntu"}},
	} {
		n.fails(uidAlice, 2, c.want, c.args...)
	}
	var models []resource
	if n.jsonOut(uidAlice, &models, "model", "list", p); len(models) != 1 {
		t.Errorf("a refused model was left behind: %+v", models)
	}

	// In the mount: descriptors viewers may read, never written; the model's files.
	if out, err := sh(t, uidBob, "ls "+vision+"/images "+vision+"/nodes "+vision+"/aliases "+vision+"/dataproc-templates"); err != nil ||
		strings.Join(strings.Fields(out), " ") != vision+"/aliases: prod.json "+vision+"/dataproc-templates: etl.json "+vision+"/images: custom.json torch.json "+vision+"/nodes: py.json serve.json" {
		t.Errorf("viewer lists the descriptors: %q %v", out, err)
	}
	var desc resource
	if out, err := sh(t, uidBob, "cat "+vision+"/nodes/serve.json"); err != nil || json.Unmarshal([]byte(out), &desc) != nil || desc.Name != "serve" {
		t.Errorf("viewer reads a node's descriptor: %q %v", out, err)
	} else if desc.field(t, "endpoint", &endpoint); !strings.HasPrefix(endpoint, "https://node-") {
		t.Errorf("descriptor endpoint %q", endpoint)
	}
	if out, err := sh(t, uidBob, "cat "+vision+"/images/custom.json"); err != nil || !strings.Contains(out, `FROM python:3.11-slim`) {
		t.Errorf("viewer reads an image's descriptor: %q %v", out, err)
	}
	for _, w := range []string{
		"printf x > " + vision + "/images/torch.json",
		"touch " + vision + "/images/new.json",
		"rm " + vision + "/nodes/serve.json",
		"mkdir " + vision + "/models/other",
		"printf x > " + vision + "/models/resnet/weights.bin",
		"rm -r " + vision + "/models/resnet",
	} {
		if _, err := sh(t, uidAlice, w); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
			t.Errorf("%s: %v, want Read-only file system", w, err)
		}
	}
	if got, err := sh(t, uidAlice, "cat "+vision+"/models/resnet/weights.bin"); err != nil || sum([]byte(got)) != sum(weights) {
		t.Errorf("alice reads the model's weights: %d bytes %v", len(got), err)
	}
	if got, err := sh(t, uidAlice, "cat "+vision+"/models/resnet/tokenizer/vocab.txt"); err != nil || got != "cat\ndog\n" {
		t.Errorf("alice reads the model's vocabulary: %q %v", got, err)
	}
	if _, err := sh(t, uidBob, "cat "+vision+"/models/resnet/weights.bin"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("viewer reads the model's weights: %v", err)
	}
	if out, err := sh(t, uidOutsider, "ls "+vision+"/nodes"); err == nil {
		t.Errorf("eve lists another project's nodes: %q", out)
	}

	// Updated: the descriptor in the mount follows.
	n.ok(uidAlice, "node", "set", p, "serve", "--state", "stopped", "--instances", "3")
	if out, err := sh(t, uidBob, "cat "+vision+"/nodes/serve.json"); err != nil || !strings.Contains(out, `"state": "stopped"`) || !strings.Contains(out, `"instances": 3`) {
		t.Errorf("node descriptor after set: %q %v", out, err)
	}
	n.ok(uidAlice, "alias", "set", p, "prod", "--node", "serve=50", "--node", "py=50")
	n.jsonOut(uidAlice, &alias, "alias", "show", p, "prod")
	var nodes []struct {
		Node   string
		Weight int
	}
	alias.field(t, "nodes", &nodes)
	if len(nodes) != 2 || nodes[0].Weight != 50 || nodes[1].Weight != 50 {
		t.Errorf("alias weights after set: %+v", nodes)
	}
	n.fails(uidAlice, 2, "add up to 90", "alias", "set", p, "prod", "--node", "serve=90")
	n.ok(uidAlice, "image", "set", p, "custom", "--state", "ready")
	n.fails(uidAlice, 2, "unknown Data Proc service", "dataproc-template", "set", p, "etl", "--services", "kafka")

	// Referred to: refused with what refers to it.
	n.fails(uidAlice, 5, `node "serve" refers to it`, "image", "delete", p, "torch")
	n.fails(uidAlice, 5, `alias "prod" refers to it`, "node", "delete", p, "serve")

	// Published into the community: seen from its other projects, read-only; not beyond.
	for _, r := range []string{"images/torch", "nodes/serve", "aliases/prod", "dataproc-templates/etl", "models/resnet"} {
		n.ok(uidAlice, "share", "resource:"+p+"/"+r, "--community", "acme/cats")
	}
	if out, err := sh(t, uidCarol, "cat "+audio+"/images/torch.json "+audio+"/aliases/prod.json "+audio+"/dataproc-templates/etl.json"); err != nil || !strings.Contains(out, "cr.yandex/crp1/torch:2.1") || !strings.Contains(out, "masternode") {
		t.Errorf("carol reads published descriptors: %q %v", out, err)
	}
	if got, err := sh(t, uidCarol, "cat "+audio+"/models/resnet/weights.bin"); err != nil || sum([]byte(got)) != sum(weights) {
		t.Errorf("carol reads the published model: %d bytes %v", len(got), err)
	}
	var seen []resource
	n.jsonOut(uidCarol, &seen, "node", "list", "acme/cats/audio")
	if len(seen) != 1 || seen[0].Name != "serve" || seen[0].Owner != p {
		t.Errorf("carol lists nodes in her project: %+v", seen)
	}
	if out, err := sh(t, uidOutsider, "ls "+barks+"/images "+barks+"/models"); err != nil || strings.Contains(out, "torch") || strings.Contains(out, "resnet") {
		t.Errorf("another community sees published resources: %q %v", out, err)
	}

	// Deleted, in the order references allow.
	n.ok(uidAlice, "alias", "delete", p, "prod")
	n.ok(uidAlice, "node", "delete", p, "serve")
	n.ok(uidAlice, "image", "delete", p, "torch")
	n.ok(uidAlice, "model", "delete", p, "resnet")
	if out, err := sh(t, uidBob, "ls "+vision+"/images "+vision+"/models"); err != nil || strings.Contains(out, "torch") || strings.Contains(out, "resnet") {
		t.Errorf("deleted resources still listed: %q %v", out, err)
	}
	if out, _ := sh(t, uidCarol, "ls "+audio+"/images"); strings.Contains(out, "torch") {
		t.Errorf("a deleted published image is still listed: %q", out)
	}
}

// Each limit reached and reported: creating past a count limit is refused
// with the limit's name and value (ENOSPC through the mount), and writes
// past the storage limit get ENOSPC.
func TestProjectLimits(t *testing.T) {
	p := newProject(t, "v")
	p.ok(0, "project", "set", projectPath, "--limit", "secrets=1", "--limit", "datasets=1", "--limit", "dataset-storage=64K",
		"--limit", "s3-connectors=0", "--limit", "models=2")

	// Counts: the secret TOKEN is the one allowed.
	p.fails(uidAlice, 5, "its limit limit.secrets is 1", "secret", "create", projectPath, "SECOND")
	if _, err := sh(t, uidAlice, "printf x > "+p.mnt+"/secrets/OTHER"); err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("writing a secret past the limit: %v", err)
	}
	p.ok(uidAlice, "dataset", "create", projectPath, "a")
	p.fails(uidAlice, 5, "its limit limit.datasets is 1", "dataset", "create", projectPath, "b")
	if _, err := sh(t, uidAlice, "mkdir "+p.mnt+"/datasets/b"); err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("mkdir of a dataset past the limit: %v", err)
	}
	p.fails(uidAlice, 5, "its limit limit.s3-connectors is 0", "s3", "create", projectPath, "bucket",
		"--endpoint", "http://127.0.0.1:1", "--bucket", "data", "--key-id", "k", "--key-secret", "TOKEN")

	// Storage: datasets' and models' files together.
	if _, err := sh(t, uidAlice, "head -c 40000 /dev/zero > "+p.mnt+"/datasets/a/x"); err != nil {
		t.Fatalf("a write within the limit: %v", err)
	}
	src := filepath.Join(p.dir, "model")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "weights.bin"), make([]byte, 30000), 0o644)
	p.fails(uidAlice, 5, "limit.dataset-storage is 65536", "model", "create", projectPath, "big", "--from", src, "--produced-by", "a test")
	var models []resource
	if p.jsonOut(uidAlice, &models, "model", "list", projectPath); len(models) != 0 {
		t.Errorf("a model refused for space was left behind: %+v", models)
	}
	if _, err := sh(t, uidAlice, "head -c 30000 /dev/zero > "+p.mnt+"/datasets/a/y"); err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("a write past the storage limit: %v", err)
	}

	// Reported, against each limit.
	var proj struct {
		Limits []struct {
			Name  string
			Used  int64
			Limit *int64
		}
	}
	p.jsonOut(uidBob, &proj, "project", "show", projectPath)
	got := map[string]string{}
	for _, l := range proj.Limits {
		got[l.Name] = fmt.Sprint(l.Used, "/-")
		if l.Limit != nil {
			got[l.Name] = fmt.Sprint(l.Used, "/", *l.Limit)
		}
	}
	for name, want := range map[string]string{"secrets": "1/1", "datasets": "1/1", "s3-connectors": "0/0", "models": "0/2", "nodes": "0/-", "images": "0/-"} {
		if got[name] != want {
			t.Errorf("limit %s: %s, want %s (all: %v)", name, got[name], want, got)
		}
	}
	if s := got["dataset-storage"]; !strings.HasSuffix(s, "/65536") || s < "40000" {
		t.Errorf("dataset-storage: %s, want 40000 to 65536 of 65536", s)
	}
	if out := p.ok(uidBob, "project", "show", projectPath); !strings.Contains(out, "limits:") || !strings.Contains(out, "64.0 KiB") {
		t.Errorf("project show:\n%s", out)
	}

	// Bad limits; who may set them.
	p.fails(0, 2, "KEY one of", "project", "set", projectPath, "--limit", "bogus=1")
	p.fails(0, 2, "not a count", "project", "set", projectPath, "--limit", "datasets=-1")
	p.fails(0, 2, "not a size", "project", "set", projectPath, "--limit", "dataset-storage=10X")
	p.fails(uidBob, 3, "permission denied", "project", "set", projectPath, "--limit", "datasets=5")
	p.fails(uidAlice, 3, "permission denied", "project", "set", projectPath, "--limit", "datasets=5")

	// Unset: creating works again.
	p.ok(0, "project", "set", projectPath, "--limit", "datasets=")
	p.ok(uidAlice, "dataset", "create", projectPath, "b")
}
