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

// indexDatasets recomputes every dataset's index, after a restore.
func (s *State) indexDatasets() {
	s.datasetIndexes = make(map[policy.ID]*datasetIndex, len(s.Datasets))
	for id := range s.Datasets {
		s.indexDataset(id)
	}
}
