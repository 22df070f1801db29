package cluster

import (
	"path"
	"slices"

	"github.com/sphere-sandbox/sphere/policy"
)

// datasetIndex is derived from one dataset's files: what they hold, and
// each directory's children. A mount asks for both on every lookup and
// listing (whether the dataset still has room is part of what a walk
// learns), so they must not cost a scan of every file of the dataset.
// Writes pay for it instead: each change to a dataset reindexes it, in
// time proportional to its files, as a DatasetPut's staged copy already
// costs.
type datasetIndex struct {
	size     int64
	files    int
	children map[string][]string // by directory ("" is the root), sorted
	blobs    map[Blob]int        // how many of its chunks name each blob
}

// indexDataset recomputes the index of the dataset id from its files, and
// moves its blobs' counts in the state's blob index.
func (s *State) indexDataset(id policy.ID) {
	if old := s.datasetIndexes[id]; old != nil {
		s.countBlobs(old.blobs, -1)
	}
	files, ok := s.Datasets[id]
	if !ok {
		delete(s.datasetIndexes, id)
		return
	}
	x := &datasetIndex{children: map[string][]string{}, blobs: map[Blob]int{}}
	for p, f := range files {
		if !f.Dir {
			x.size += f.Size
			x.files++
		}
		for _, ch := range f.Chunks {
			x.blobs[Blob{Hash: ch.Hash, Gen: ch.Gen}]++
		}
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		x.children[dir] = append(x.children[dir], path.Base(p))
	}
	for _, names := range x.children {
		slices.Sort(names)
	}
	s.datasetIndexes[id] = x
	s.countBlobs(x.blobs, 1)
}

// countBlobs adds (sign 1) or takes away (-1) one dataset's blob counts.
func (s *State) countBlobs(blobs map[Blob]int, sign int) {
	for b, n := range blobs {
		gens := s.blobRefs[b.Hash]
		if gens == nil {
			gens = map[uint64]int{}
			s.blobRefs[b.Hash] = gens
		}
		if gens[b.Gen] += sign * n; gens[b.Gen] == 0 {
			delete(gens, b.Gen)
		}
		if len(gens) == 0 {
			delete(s.blobRefs, b.Hash)
		}
	}
}

// indexDatasets recomputes every dataset's index, after a restore.
func (s *State) indexDatasets() {
	s.blobRefs = map[string]map[uint64]int{}
	s.datasetIndexes = make(map[policy.ID]*datasetIndex, len(s.Datasets))
	for id := range s.Datasets {
		s.indexDataset(id)
	}
}
