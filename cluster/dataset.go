package cluster

import (
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sphere-sandbox/sphere/policy"
)

// Dataset settings and states (SPEC.md §9): a dataset is created
// initializing (writable) and sealed once, after which it is read-only and
// immutable for good.
const (
	SettingState      = "state"
	SettingSizeLimit  = "size-limit"
	StateInitializing = "initializing"
	StateSealed       = "sealed"
)

// Chunk is one content-addressed piece of a dataset file; its bytes live in
// the blob store, its hash and length here.
type Chunk struct {
	Hash string `json:"h"`
	Size int64  `json:"n"`
	// Gen is the generation its blob was written in (sweep.go).
	Gen uint64 `json:"g,omitempty"`
}

// DatasetFile is a file or directory of a dataset.
type DatasetFile struct {
	Dir    bool      `json:"dir,omitempty"`
	Size   int64     `json:"size,omitempty"`
	MTime  time.Time `json:"mtime"`
	Chunks []Chunk   `json:"chunks,omitempty"`
}

// Dataset commands.
const (
	CmdDatasetPut    CommandType = "dataset.put"
	CmdDatasetMkdir  CommandType = "dataset.mkdir"
	CmdDatasetRemove CommandType = "dataset.remove"
	CmdDatasetSeal   CommandType = "dataset.seal"
)

type (
	// DatasetPut records whole files (new or replacing), a batch at a time.
	DatasetPut struct {
		Dataset policy.ID `json:"dataset"`
		Files   []PutFile `json:"files"`
	}
	PutFile struct {
		Path   string    `json:"path"`
		Size   int64     `json:"size"`
		MTime  time.Time `json:"mtime"`
		Chunks []Chunk   `json:"chunks"`
	}
	DatasetPath struct {
		Dataset policy.ID `json:"dataset"`
		Path    string    `json:"path"`
	}
	DatasetSeal struct {
		Dataset policy.ID `json:"dataset"`
	}
)

func init() {
	handlers[CmdDatasetPut] = applyDatasetPut
	handlers[CmdDatasetMkdir] = applyDatasetMkdir
	handlers[CmdDatasetRemove] = applyDatasetRemove
	handlers[CmdDatasetSeal] = applyDatasetSeal
}

// maxFileName is the usual filesystem limit on one path component.
const maxFileName = 255

// ValidateDatasetPath checks a path inside a dataset: relative, clean, no
// empty, "." or ".." components, no NUL, components ≤ 255 bytes.
func ValidateDatasetPath(p string) error {
	if p == "" {
		return Errorf(CodeInvalid, "invalid dataset path: empty")
	}
	if strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return Errorf(CodeInvalid, "invalid dataset path %q: must be relative and clean (no leading /, //, . or ..)", p)
	}
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "." || c == "..":
			return Errorf(CodeInvalid, "invalid dataset path %q: %q is not a file name", p, c)
		case len(c) > maxFileName:
			return Errorf(CodeInvalid, "invalid dataset path: a component is %d bytes, the limit is %d", len(c), maxFileName)
		case strings.ContainsRune(c, 0) || !utf8.ValidString(c):
			return Errorf(CodeInvalid, "invalid dataset path %q: NUL or invalid UTF-8", p)
		}
	}
	return nil
}

// writableDataset finds a dataset (or a model, whose files are stored
// alike) the actor may write: initializing, and edit-resource.
func (s *State) writableDataset(c *Command, id policy.ID) (*Entity, error) {
	e, ok := s.Entities[id]
	if !ok || !HoldsFiles(e.Type) {
		return nil, Errorf(CodeNotFound, "dataset not found")
	}
	if err := authorize(s, c, policy.ActEditResource, policy.Target{ID: id}); err != nil {
		return nil, err
	}
	if e.Settings[SettingState] == StateSealed {
		return nil, Errorf(CodeReadOnly, "%s %s is sealed: read-only and immutable", e.Type, s.Path(id))
	}
	return e, nil
}

// DatasetUsage is a dataset's total file size and file count.
func (s *State) DatasetUsage(id policy.ID) (size int64, files int) {
	if x := s.datasetIndexes[id]; x != nil {
		return x.size, x.files
	}
	return 0, 0
}

// SizeLimit is a dataset's size limit in bytes; 0 means none.
func SizeLimit(e *Entity) int64 {
	n, _ := strconv.ParseInt(e.Settings[SettingSizeLimit], 10, 64)
	return n
}

// mkdirs records every missing parent directory of p.
func (s *State) mkdirs(files map[string]*DatasetFile, p string, t time.Time) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	if f, ok := files[dir]; ok {
		if !f.Dir {
			return Errorf(CodeConflict, "%q is a file, not a directory", dir)
		}
		return nil
	}
	if err := s.mkdirs(files, dir, t); err != nil {
		return err
	}
	files[dir] = &DatasetFile{Dir: true, MTime: t}
	return nil
}

func (s *State) datasetFiles(id policy.ID) map[string]*DatasetFile {
	files, ok := s.Datasets[id]
	if !ok {
		files = map[string]*DatasetFile{}
		s.Datasets[id] = files
	}
	return files
}

func applyDatasetPut(s *State, c *Command) (policy.ID, error) {
	p := decode[DatasetPut](c)
	e, err := s.writableDataset(c, p.Dataset)
	if err != nil {
		return 0, err
	}
	files := s.datasetFiles(p.Dataset)
	size, _ := s.DatasetUsage(p.Dataset)
	before := size
	for _, f := range p.Files {
		if err := ValidateDatasetPath(f.Path); err != nil {
			return 0, err
		}
		var sum int64
		for _, ch := range f.Chunks {
			if err := s.usableChunk(ch); err != nil {
				return 0, err
			}
			sum += ch.Size
		}
		if sum != f.Size || f.Size < 0 {
			return 0, Errorf(CodeInvalid, "file %q: chunks add up to %d bytes, not %d", f.Path, sum, f.Size)
		}
		if old, ok := files[f.Path]; ok {
			if old.Dir {
				return 0, Errorf(CodeConflict, "%q is a directory", f.Path)
			}
			size -= old.Size
		}
		size += f.Size
	}
	if limit := SizeLimit(e); limit > 0 && size > limit {
		return 0, Errorf(CodeNoSpace, "dataset %s would hold %d bytes; its size limit is %d", s.Path(e.ID), size, limit)
	}
	// Only growth counts against the project's limit, so that a project
	// over a lowered limit can still shrink its files.
	if p, ok := s.Entities[e.Parent]; ok && size > before {
		if limit, ok := LimitOf(p, LimitStorage); ok {
			if total := s.storageUsed(p.ID) + size - before; total > limit {
				return 0, Errorf(CodeNoSpace, "project %s's datasets and models would hold %d bytes; its limit %s%s is %d",
					s.Path(p.ID), total, LimitPrefix, LimitStorage, limit)
			}
		}
	}
	// Validate the whole batch against a copy first: a refused batch
	// changes nothing.
	staged := make(map[string]*DatasetFile, len(files)+len(p.Files))
	for k, v := range files {
		staged[k] = v
	}
	var replaced []*DatasetFile
	for _, f := range p.Files {
		if err := s.mkdirs(staged, f.Path, c.Time); err != nil {
			return 0, err
		}
		if old := staged[f.Path]; old != nil {
			replaced = append(replaced, old)
		}
		staged[f.Path] = &DatasetFile{Size: f.Size, MTime: f.MTime.UTC(), Chunks: f.Chunks}
	}
	s.Datasets[p.Dataset] = staged
	s.indexDataset(p.Dataset)
	for _, f := range p.Files {
		s.countChunks(f.Chunks, 1)
	}
	for _, old := range replaced {
		s.countChunks(old.Chunks, -1)
	}
	e.Modified = c.Time
	return e.ID, nil
}

func applyDatasetMkdir(s *State, c *Command) (policy.ID, error) {
	p := decode[DatasetPath](c)
	e, err := s.writableDataset(c, p.Dataset)
	if err != nil {
		return 0, err
	}
	if err := ValidateDatasetPath(p.Path); err != nil {
		return 0, err
	}
	files := s.datasetFiles(p.Dataset)
	if _, ok := files[p.Path]; ok {
		return 0, Errorf(CodeExists, "%q already exists", p.Path)
	}
	if err := s.mkdirs(files, p.Path, c.Time); err != nil {
		return 0, err
	}
	files[p.Path] = &DatasetFile{Dir: true, MTime: c.Time}
	s.indexDataset(p.Dataset)
	e.Modified = c.Time
	return e.ID, nil
}

func applyDatasetRemove(s *State, c *Command) (policy.ID, error) {
	p := decode[DatasetPath](c)
	e, err := s.writableDataset(c, p.Dataset)
	if err != nil {
		return 0, err
	}
	files := s.Datasets[p.Dataset]
	f, ok := files[p.Path]
	if !ok {
		return 0, Errorf(CodeNotFound, "%q not found", p.Path)
	}
	if f.Dir && len(s.datasetIndexes[p.Dataset].children[p.Path]) > 0 {
		return 0, Errorf(CodeConflict, "directory %q is not empty", p.Path)
	}
	delete(files, p.Path)
	s.countChunks(f.Chunks, -1)
	s.indexDataset(p.Dataset)
	e.Modified = c.Time
	return e.ID, nil
}

func applyDatasetSeal(s *State, c *Command) (policy.ID, error) {
	p := decode[DatasetSeal](c)
	e, err := s.writableDataset(c, p.Dataset)
	if err != nil {
		return 0, err
	}
	if e.Settings == nil {
		e.Settings = map[string]string{}
	}
	e.Settings[SettingState] = StateSealed
	e.Modified = c.Time
	return e.ID, nil
}

// DatasetList lists one directory of a dataset ("" is its root), sorted.
// The caller must not change the slice.
func (s *State) DatasetList(id policy.ID, dir string) []string {
	if x := s.datasetIndexes[id]; x != nil {
		return x.children[dir]
	}
	return nil
}

// DatasetFileAt finds a file or directory of a dataset.
func (s *State) DatasetFileAt(id policy.ID, p string) (*DatasetFile, bool) {
	f, ok := s.Datasets[id][p]
	return f, ok
}
