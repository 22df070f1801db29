package cluster

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

func spec(t *testing.T, v any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Each kind's fields are checked at apply time, with the rule broken in the
// message; references resolve in the project; deleting what is referred to
// is refused with what refers to it.
func TestResourceDescriptors(t *testing.T) {
	h := newHarness(t)
	_, _, proj, _ := h.org()
	res := func(typ, name string, v any) Create {
		return Create{Kind: policy.KindResource, Type: typ, Parent: proj, Name: name, Spec: spec(t, v)}
	}
	type m = map[string]any
	master := m{"name": "master", "role": "masternode", "preset": "s2.micro", "disk_gb": 20, "hosts": 1}
	data := m{"name": "data", "role": "datanode", "preset": "s2.small", "disk_gb": 100, "hosts": 3}
	tests := []struct {
		name string
		c    Create
		msg  string // "" succeeds
	}{
		{"image from a registry", res(TypeImage, "torch", m{"registry": "cr.yandex/crp1/torch:2.1"}), ""},
		{"image from a Dockerfile", res(TypeImage, "custom", m{"tag": "v1", "dockerfile": "# base\nARG V=3\nFROM python:3.11\nRUN pip install x\n"}), ""},
		{"image with two sources", res(TypeImage, "x", m{"registry": "ubuntu", "dockerfile": "FROM ubuntu"}), "exactly one source"},
		{"image with no source", res(TypeImage, "x", m{}), "exactly one source"},
		{"bad registry reference", res(TypeImage, "x", m{"registry": "Ubuntu/UPPER"}), "invalid registry reference"},
		{"bad tag", res(TypeImage, "x", m{"registry": "ubuntu", "tag": "-x"}), "invalid image tag"},
		{"Dockerfile without FROM", res(TypeImage, "x", m{"dockerfile": "RUN true"}), "first instruction is RUN"},
		{"Dockerfile too large", res(TypeImage, "x", m{"dockerfile": "FROM a\n" + strings.Repeat("#", maxDockerfile)}), "the limit is"},
		{"unknown field", res(TypeImage, "x", m{"registry": "ubuntu", "colour": "red"}), "unknown field"},
		{"bad state", res(TypeImage, "x", m{"registry": "ubuntu", "state": "done"}), "pending, ready or failed"},

		{"docker node", res(TypeNode, "serve", m{"kind": "docker", "image": "torch", "instance": "g1.1"}), ""},
		{"python node", res(TypeNode, "py", m{"kind": "python", "instance": "c1.4", "instances": 2}), ""},
		{"docker node without its image", res(TypeNode, "x", m{"kind": "docker", "image": "nope", "instance": "c1.4"}), `names image "nope"`},
		{"python node with an image", res(TypeNode, "x", m{"kind": "python", "image": "torch", "instance": "c1.4"}), "runs no image"},
		{"node of another kind", res(TypeNode, "x", m{"kind": "java", "instance": "c1.4"}), "python or docker"},
		{"unknown instance", res(TypeNode, "x", m{"kind": "python", "instance": "c9.99"}), "invalid instance configuration"},
		{"too many instances", res(TypeNode, "x", m{"kind": "python", "instance": "c1.4", "instances": 17}), "1 to 16 instances"},
		{"endpoint given", res(TypeNode, "x", m{"kind": "python", "instance": "c1.4", "endpoint": "https://evil"}), "assigned by sphere"},

		{"alias", res(TypeAlias, "prod", m{"nodes": []m{{"node": "serve", "weight": 70}, {"node": "py", "weight": 30}}}), ""},
		{"weights not 100", res(TypeAlias, "x", m{"nodes": []m{{"node": "serve", "weight": 70}}}), "add up to 70"},
		{"alias to a missing node", res(TypeAlias, "x", m{"nodes": []m{{"node": "gone", "weight": 100}}}), `names node "gone"`},
		{"a node twice", res(TypeAlias, "x", m{"nodes": []m{{"node": "py", "weight": 50}, {"node": "py", "weight": 50}}}), "twice"},

		{"template", res(TypeDataprocTemplate, "etl", m{"version": "2.1", "services": []string{"spark", "yarn", "hdfs"}, "host_groups": []m{master, data}}), ""},
		{"unknown version", res(TypeDataprocTemplate, "x", m{"version": "9.9", "services": []string{"HDFS"}, "host_groups": []m{master, data}}), "invalid Data Proc version"},
		{"unknown service", res(TypeDataprocTemplate, "x", m{"version": "2.1", "services": []string{"KAFKA"}, "host_groups": []m{master}}), "unknown Data Proc service"},
		{"spark without yarn", res(TypeDataprocTemplate, "x", m{"version": "2.1", "services": []string{"SPARK"}, "host_groups": []m{master}}), "runs on YARN"},
		{"no masternode", res(TypeDataprocTemplate, "x", m{"version": "2.1", "services": []string{"HDFS"}, "host_groups": []m{data}}), "exactly one masternode group"},
		{"two masters", res(TypeDataprocTemplate, "x", m{"version": "2.1", "services": []string{"YARN"}, "host_groups": []m{{"name": "master", "role": "masternode", "preset": "s2.micro", "disk_gb": 20, "hosts": 2}}}), "exactly 1 host"},
		{"tiny disk", res(TypeDataprocTemplate, "x", m{"version": "2.1", "services": []string{"YARN"}, "host_groups": []m{{"name": "master", "role": "masternode", "preset": "s2.micro", "disk_gb": 5, "hosts": 1}}}), "a disk is 20 to 4096 GB"},

		{"model", res(TypeModel, "resnet", m{"produced_by": "notebook train.ipynb, cell 4"}), ""},
		{"model without its origin", res(TypeModel, "x", m{}), "--produced-by"},
		{"checkpoint", res(TypeModel, "ckpt", m{"kind": "checkpoint", "produced_by": "job 17"}), ""},
		{"descriptor for a secret", Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: "S", Spec: spec(t, m{})}, "has no descriptor"},
	}
	for _, tc := range tests {
		r := h.apply(policy.Bootstrap, CmdCreate, tc.c)
		switch {
		case tc.msg == "" && r.Err() != nil:
			t.Errorf("%s: %v", tc.name, r.Err())
		case tc.msg != "" && (r.Code != CodeInvalid || !strings.Contains(r.Msg, tc.msg)):
			t.Errorf("%s: %q (%s), want invalid with %q", tc.name, r.Msg, r.Code, tc.msg)
		}
	}

	node, _ := h.s.Child(proj, policy.KindResource, TypeNode, "serve")
	var ns NodeSpec
	if err := json.Unmarshal(node.Spec, &ns); err != nil || ns.Endpoint != endpoint("node", node.ID) || ns.Resources.GPU != "V100" || ns.State != NodeRunning {
		t.Errorf("node descriptor %s (%v)", node.Spec, err)
	}
	tmpl, _ := h.s.Child(proj, policy.KindResource, TypeDataprocTemplate, "etl")
	if !bytes.Contains(tmpl.Spec, []byte(`"services":["HDFS","SPARK","YARN"]`)) {
		t.Errorf("services not canonical: %s", tmpl.Spec)
	}

	// References: an image used by a node, a node used by an alias.
	image, _ := h.s.Child(proj, policy.KindResource, TypeImage, "torch")
	alias, _ := h.s.Child(proj, policy.KindResource, TypeAlias, "prod")
	if r := h.apply(policy.Bootstrap, CmdDelete, Delete{ID: image.ID}); r.Code != CodeConflict || !strings.Contains(r.Msg, `node "serve" refers to it`) {
		t.Errorf("deleting a used image: %+v", r)
	}
	if r := h.apply(policy.Bootstrap, CmdDelete, Delete{ID: node.ID}); r.Code != CodeConflict || !strings.Contains(r.Msg, `alias "prod" refers to it`) {
		t.Errorf("deleting a used node: %+v", r)
	}
	// Changing the weights is an update, checked like a create.
	if r := h.apply(policy.Bootstrap, CmdUpdate, Update{ID: alias.ID, Spec: spec(t, m{"nodes": []m{{"node": "py", "weight": 60}}})}); r.Code != CodeInvalid {
		t.Errorf("weights adding up to 60: %+v", r)
	}
	h.must(policy.Bootstrap, CmdUpdate, Update{ID: alias.ID, Spec: spec(t, m{"nodes": []m{{"node": "py", "weight": 100}}})})
	if !bytes.Contains(alias.Spec, []byte(`"nodes":[{"node":"py","weight":100}]`)) || !bytes.Contains(alias.Spec, []byte(`"endpoint":"https://alias-`)) {
		t.Errorf("alias after the update: %s", alias.Spec)
	}
	h.must(policy.Bootstrap, CmdDelete, Delete{ID: node.ID})
	// The node is gone; its image is free again.
	h.must(policy.Bootstrap, CmdDelete, Delete{ID: image.ID})
	// A patch keeps the fields it does not name.
	h.must(policy.Bootstrap, CmdUpdate, Update{ID: tmpl.ID, Spec: spec(t, m{"version": "2.0"})})
	if !bytes.Contains(tmpl.Spec, []byte(`"version":"2.0"`)) || !bytes.Contains(tmpl.Spec, []byte(`"name":"master"`)) {
		t.Errorf("template after a patch: %s", tmpl.Spec)
	}

	// The descriptors survive a snapshot byte for byte.
	h.restore()
}

// Limits: counts refused at create, storage refused at put, with the
// limit's name and value; usage reported.
func TestProjectLimits(t *testing.T) {
	h := newHarness(t)
	_, _, proj, _ := h.org()
	h.must(policy.Bootstrap, CmdUpdate, Update{ID: proj, Settings: map[string]string{
		LimitPrefix + "secrets": "1", LimitPrefix + LimitStorage: "100", LimitPrefix + "models": "0"}})
	secret := func(name string) Create {
		return Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: name, Sealed: []byte("x"), SecretLen: 1}
	}
	h.must(policy.Bootstrap, CmdCreate, secret("A"))
	if r := h.apply(policy.Bootstrap, CmdCreate, secret("B")); r.Code != CodeNoSpace || !strings.Contains(r.Msg, "limit.secrets is 1") {
		t.Errorf("second secret: %+v", r)
	}
	// Replacing a secret's value is not a new one.
	replace := secret("A")
	replace.Replace = true
	h.must(policy.Bootstrap, CmdCreate, replace)
	if r := h.apply(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeModel, Parent: proj, Name: "m",
		Spec: spec(t, map[string]string{"produced_by": "x"})}); r.Code != CodeNoSpace || !strings.Contains(r.Msg, "limit.models is 0") {
		t.Errorf("a model past a limit of 0: %+v", r)
	}

	dataset := func(name string) policy.ID {
		return h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeDataset, Parent: proj, Name: name,
			Settings: map[string]string{SettingState: StateInitializing}})
	}
	a, b := dataset("a"), dataset("b")
	put := func(ds policy.ID, p string, n int64) Response {
		return h.apply(policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{{Path: p, Size: n, MTime: time.Unix(1, 0),
			Chunks: []Chunk{{Hash: strings.Repeat("a", 64), Size: n}}}}})
	}
	if err := put(a, "x", 60).Err(); err != nil {
		t.Fatal(err)
	}
	if free, rule := h.s.SpaceLeft(b); free != 40 || !strings.Contains(rule, "limit.dataset-storage of 100") {
		t.Errorf("space left in b: %d %q", free, rule)
	}
	if r := put(b, "y", 41); r.Code != CodeNoSpace || !strings.Contains(r.Msg, "limit.dataset-storage is 100") {
		t.Errorf("past the storage limit: %+v", r)
	}
	if err := put(b, "y", 40).Err(); err != nil {
		t.Errorf("up to the storage limit: %v", err)
	}
	if got := h.s.Usage(proj, LimitStorage); got != 100 {
		t.Errorf("storage used %d, want 100", got)
	}
	if got := h.s.Usage(proj, "datasets"); got != 2 {
		t.Errorf("datasets used %d, want 2", got)
	}
	// Lowered below what is used: shrinking is still allowed.
	h.must(policy.Bootstrap, CmdUpdate, Update{ID: proj, Settings: map[string]string{LimitPrefix + LimitStorage: "50"}})
	if err := put(a, "x", 10).Err(); err != nil {
		t.Errorf("shrinking over a lowered limit: %v", err)
	}
}
