package cluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

func TestDatasetLifecycle(t *testing.T) {
	h := newHarness(t)
	org, _, proj, alice := h.org()
	other := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindCommunity, Parent: org, Name: "fences"})
	ds := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeDataset, Parent: proj, Name: "images",
		Settings: map[string]string{SettingState: StateInitializing, SettingSizeLimit: "100"}})
	file := func(p string, n int64) PutFile {
		return PutFile{Path: p, Size: n, MTime: time.Unix(1, 0), Chunks: []Chunk{{Hash: strings.Repeat("a", 64), Size: n}}}
	}
	tests := []struct {
		name    string
		actor   policy.ID
		typ     CommandType
		payload any
		code    ErrCode
	}{
		{"put creates parents", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("a/b/c.csv", 10)}}, ""},
		{"replace keeps usage right", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("a/b/c.csv", 60)}}, ""},
		{"past the size limit", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("d.csv", 41)}}, CodeNoSpace},
		{"chunks must add up", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{{Path: "x", Size: 5}}}, CodeInvalid},
		{"a file is not a directory", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("a/b/c.csv/d", 1)}}, CodeConflict},
		{"bad path", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("../etc/passwd", 1)}}, CodeInvalid},
		{"absolute path", policy.Bootstrap, CmdDatasetMkdir, DatasetPath{Dataset: ds, Path: "/abs"}, CodeInvalid},
		{"non-empty dir", policy.Bootstrap, CmdDatasetRemove, DatasetPath{Dataset: ds, Path: "a/b"}, CodeConflict},
		{"alice has no role", alice, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("e", 1)}}, CodeDenied},
		{"unsealed is not published", policy.Bootstrap, CmdPublish, Publish{Resource: ds, Community: other}, CodeConflict},
		{"mkdir", policy.Bootstrap, CmdDatasetMkdir, DatasetPath{Dataset: ds, Path: "empty"}, ""},
		{"rmdir", policy.Bootstrap, CmdDatasetRemove, DatasetPath{Dataset: ds, Path: "empty"}, ""},
		{"seal", policy.Bootstrap, CmdDatasetSeal, DatasetSeal{Dataset: ds}, ""},
		{"sealed is immutable", policy.Bootstrap, CmdDatasetPut, DatasetPut{Dataset: ds, Files: []PutFile{file("f", 1)}}, CodeReadOnly},
		{"sealed cannot lose files", policy.Bootstrap, CmdDatasetRemove, DatasetPath{Dataset: ds, Path: "a/b/c.csv"}, CodeReadOnly},
		{"sealed is published", policy.Bootstrap, CmdPublish, Publish{Resource: ds, Community: other}, ""},
	}
	for _, tt := range tests {
		before, _ := h.s.Encode()
		r := h.apply(tt.actor, tt.typ, tt.payload)
		if r.Code != tt.code {
			t.Fatalf("%s: got %q (%s), want %q", tt.name, r.Code, r.Msg, tt.code)
		}
		if after, _ := h.s.Encode(); tt.code != "" && !bytes.Equal(before, after) {
			t.Fatalf("%s: a refused command changed the state", tt.name)
		}
	}
	if size, files := h.s.DatasetUsage(ds); size != 60 || files != 1 {
		t.Errorf("usage %d bytes in %d files, want 60 in 1", size, files)
	}
	if got := strings.Join(h.s.DatasetList(ds, ""), ","); got != "a" {
		t.Errorf("root lists %q", got)
	}
	if got := strings.Join(h.s.DatasetList(ds, "a/b"), ","); got != "c.csv" {
		t.Errorf("a/b lists %q", got)
	}
	data, _ := h.s.Encode()
	restored := NewState()
	if err := restored.Decode(data); err != nil {
		t.Fatal(err)
	}
	if f, ok := restored.DatasetFileAt(ds, "a/b/c.csv"); !ok || f.Size != 60 || len(f.Chunks) != 1 {
		t.Errorf("dataset files not in the snapshot: %+v", f)
	}
	// Usage and listings are indexes: rebuilt on restore, not stored.
	if size, files := restored.DatasetUsage(ds); size != 60 || files != 1 {
		t.Errorf("restored usage %d bytes in %d files, want 60 in 1", size, files)
	}
	if got := strings.Join(restored.DatasetList(ds, "a"), ","); got != "b" {
		t.Errorf("restored a lists %q", got)
	}
	h.must(policy.Bootstrap, CmdDelete, Delete{ID: proj})
	if _, ok := h.s.Datasets[ds]; ok {
		t.Errorf("deleting the project left its dataset's files")
	}
	if size, files := h.s.DatasetUsage(ds); size != 0 || files != 0 || len(h.s.DatasetList(ds, "")) != 0 {
		t.Errorf("deleting the project left its dataset's index: %d bytes, %d files", size, files)
	}
}
