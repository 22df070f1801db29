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
}

// indexDataset recomputes the index of the dataset id from its files.
func (s *State) indexDataset(id policy.ID) {
	files, ok := s.Datasets[id]
	if !ok {
		delete(s.datasetIndexes, id)
		return
	}
	x := &datasetIndex{children: map[string][]string{}}
	for p, f := range files {
		if !f.Dir {
			x.size += f.Size
			x.files++
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
}

// countChunks adds (sign 1) or takes away (-1) a file's chunks in the blob
// index. Changes call it for the files they add and drop, so a write costs
// its own chunks, not a recount of its dataset's.
func (s *State) countChunks(chunks []Chunk, sign int) {
	for _, ch := range chunks {
		gens := s.blobRefs[ch.Hash]
		if gens == nil {
			gens = map[uint64]int{}
			s.blobRefs[ch.Hash] = gens
		}
		if gens[ch.Gen] += sign; gens[ch.Gen] == 0 {
			delete(gens, ch.Gen)
		}
		if len(gens) == 0 {
			delete(s.blobRefs, ch.Hash)
		}
	}
}

// indexDatasets recomputes every dataset's index and the blob index, after
// a restore.
func (s *State) indexDatasets() {
	s.blobRefs = map[string]map[uint64]int{}
	s.datasetIndexes = make(map[policy.ID]*datasetIndex, len(s.Datasets))
	for id, files := range s.Datasets {
		for _, f := range files {
			s.countChunks(f.Chunks, 1)
		}
		s.indexDataset(id)
	}
}
