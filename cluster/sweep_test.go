package cluster

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// A sweep dooms only what no file names, and afterwards a file is accepted
// only with chunks no sweep can have deleted, whatever the order in which
// writers and sweepers got there.
func TestSweepGenerations(t *testing.T) {
	hash := func(c string) string { return strings.Repeat(c, 64) }
	put := func(ds policy.ID, path string, chunks ...Chunk) DatasetPut {
		f := PutFile{Path: path, MTime: time.Unix(1, 0), Chunks: chunks}
		for _, c := range chunks {
			f.Size += c.Size
		}
		return DatasetPut{Dataset: ds, Files: []PutFile{f}}
	}
	kept, gone, late := Chunk{Hash: hash("a"), Size: 1}, Chunk{Hash: hash("b"), Size: 1}, Chunk{Hash: hash("c"), Size: 1}
	blob := func(c Chunk) Blob { return Blob{Hash: c.Hash, Gen: c.Gen} }
	gen := func(c Chunk, g uint64) Chunk { c.Gen = g; return c }

	// Generation 0: "kept" is in a file, "gone" was in a file since
	// removed, "late" is being written by a writer that has not committed.
	h := newHarness(t)
	_, _, proj, alice := h.org()
	ds := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeDataset, Parent: proj, Name: "images",
		Settings: map[string]string{SettingState: StateInitializing}})
	h.must(policy.Bootstrap, CmdDatasetPut, put(ds, "kept", kept))
	h.must(policy.Bootstrap, CmdDatasetPut, put(ds, "gone", gone))
	h.must(policy.Bootstrap, CmdDatasetRemove, DatasetPath{Dataset: ds, Path: "gone"})

	if r := h.apply(alice, CmdSweep, Sweep{Candidates: []Blob{blob(gone)}}); r.Code != CodeDenied {
		t.Fatalf("alice swept: %+v", r)
	}
	h.must(policy.Bootstrap, CmdSweep, Sweep{Candidates: []Blob{blob(kept), blob(gone), blob(late), blob(gone), {Hash: hash("d"), Gen: 7}}})
	if h.s.Sweep.Epoch != 1 {
		t.Fatalf("epoch %d after the first sweep, want 1", h.s.Sweep.Epoch)
	}
	want := []Blob{blob(gone), blob(late)}
	got := h.s.DoomedBlobs()
	slices.SortFunc(got, func(a, b Blob) int { return strings.Compare(a.Hash, b.Hash) })
	if !slices.Equal(got, want) {
		t.Fatalf("doomed %v, want %v: referenced blobs and blobs of a future generation are never doomed", got, want)
	}

	tests := []struct {
		name   string
		chunks []Chunk
		code   ErrCode
	}{
		{"a doomed blob of the last generation", []Chunk{late}, CodeConflict},
		{"a blob of the last generation not doomed", []Chunk{gen(Chunk{Hash: hash("e"), Size: 1}, 0)}, ""},
		{"a blob of the current generation, even with a doomed hash", []Chunk{gen(late, 1)}, ""},
		{"one doomed chunk refuses the file", []Chunk{gen(kept, 1), late}, CodeConflict},
		{"a generation that has not begun", []Chunk{gen(kept, 2)}, CodeInvalid},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := h.s.Encode()
			r := h.apply(policy.Bootstrap, CmdDatasetPut, put(ds, fmt.Sprint("file", i), tt.chunks...))
			if r.Code != tt.code {
				t.Fatalf("got %q (%s), want %q", r.Code, r.Msg, tt.code)
			}
			if after, _ := h.s.Encode(); tt.code != "" && !bytes.Equal(before, after) {
				t.Fatal("a refused commit changed the state")
			}
			if tt.code == CodeConflict && !strings.Contains(r.Msg, "write the file again") {
				t.Errorf("the refusal does not say what to do: %s", r.Msg)
			}
		})
	}

	// Two sweeps on, generation 0 is gone for good: nothing of it is
	// accepted, doomed or not, since its sweep's list is no longer kept.
	h.must(policy.Bootstrap, CmdSweep, Sweep{})
	if r := h.apply(policy.Bootstrap, CmdDatasetPut, put(ds, "old", gen(Chunk{Hash: hash("f"), Size: 1}, 0))); r.Code != CodeConflict {
		t.Errorf("a generation-0 chunk two sweeps on: %+v", r)
	}
	if r := h.apply(policy.Bootstrap, CmdDatasetPut, put(ds, "new", gen(Chunk{Hash: hash("f"), Size: 1}, 2))); r.Err() != nil {
		t.Errorf("a current chunk refused: %v", r.Err())
	}
	// A blob a file names is there, however old: writers dedup against it.
	if g, ok := h.s.ReferencedGen(kept.Hash); !ok || g != 0 {
		t.Errorf("ReferencedGen(kept) = %d, %v", g, ok)
	}
	if r := h.apply(policy.Bootstrap, CmdDatasetPut, put(ds, "copy", kept)); r.Err() != nil {
		t.Errorf("a chunk of generation 0 that a file names, refused: %v", r.Err())
	}

	// The state, sweep and blob index included, survives a snapshot.
	restored := h.restore()
	if g, ok := restored.ReferencedGen(kept.Hash); restored.Sweep.Epoch != 2 || !ok || g != 0 {
		t.Errorf("a snapshot lost the sweep: epoch %d, kept named in %d (%v)", restored.Sweep.Epoch, g, ok)
	}
}

func TestSweepRefusesBadInput(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{"../x", strings.Repeat("A", 64), strings.Repeat("a", 63)} {
		if r := h.apply(policy.Bootstrap, CmdSweep, Sweep{Candidates: []Blob{{Hash: bad}}}); r.Code != CodeInvalid || h.s.Sweep.Epoch != 0 {
			t.Errorf("a sweep of %q: %+v", bad, r)
		}
	}
	many := make([]Blob, MaxSweepCandidates+1)
	for i := range many {
		many[i] = Blob{Hash: strings.Repeat("a", 64), Gen: 0}
	}
	if r := h.apply(policy.Bootstrap, CmdSweep, Sweep{Candidates: many}); r.Code != CodeInvalid || h.s.Sweep.Epoch != 0 {
		t.Errorf("an oversized sweep: %+v, epoch %d", r, h.s.Sweep.Epoch)
	}
}

// The blob index, kept up to date on every change, is what a scan of every
// file finds.
func TestBlobIndexFollowsFiles(t *testing.T) {
	h := newHarness(t)
	_, _, proj, _ := h.org()
	scan := func() map[Blob]bool {
		out := map[Blob]bool{}
		for _, files := range h.s.Datasets {
			for _, f := range files {
				for _, ch := range f.Chunks {
					out[Blob{Hash: ch.Hash, Gen: ch.Gen}] = true
				}
			}
		}
		return out
	}
	chunk := func(c string) Chunk { return Chunk{Hash: strings.Repeat(c, 64), Size: 1} }
	file := func(path string, chunks ...Chunk) PutFile {
		return PutFile{Path: path, Size: int64(len(chunks)), MTime: time.Unix(1, 0), Chunks: chunks}
	}
	var ds [2]policy.ID
	for i := range ds {
		ds[i] = h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeDataset, Parent: proj, Name: fmt.Sprint("d", i),
			Settings: map[string]string{SettingState: StateInitializing}})
	}
	steps := []struct {
		name    string
		typ     CommandType
		payload any
	}{
		{"put", CmdDatasetPut, DatasetPut{Dataset: ds[0], Files: []PutFile{file("x", chunk("a"), chunk("b")), file("y", chunk("a"))}}},
		{"put elsewhere", CmdDatasetPut, DatasetPut{Dataset: ds[1], Files: []PutFile{file("x", chunk("b"))}}},
		{"replace", CmdDatasetPut, DatasetPut{Dataset: ds[0], Files: []PutFile{file("x", chunk("c"))}}},
		{"one path twice in a batch", CmdDatasetPut, DatasetPut{Dataset: ds[0], Files: []PutFile{file("z", chunk("d")), file("z", chunk("e"))}}},
		{"remove", CmdDatasetRemove, DatasetPath{Dataset: ds[0], Path: "y"}},
		{"delete a dataset", CmdDelete, Delete{ID: ds[1]}},
	}
	for _, st := range steps {
		h.must(policy.Bootstrap, st.typ, st.payload)
		index := map[Blob]bool{}
		for hash, gens := range h.s.blobRefs {
			for g := range gens {
				index[Blob{Hash: hash, Gen: g}] = true
			}
		}
		if got, want := index, scan(); !maps.Equal(got, want) {
			t.Fatalf("after %s: index %v, files %v", st.name, got, want)
		}
	}
	if _, ok := h.s.ReferencedGen(strings.Repeat("b", 64)); ok {
		t.Error("a blob no file names any more is still referenced")
	}
}
