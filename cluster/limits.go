package cluster

import (
	"fmt"
	"strconv"

	"github.com/sphere-sandbox/sphere/policy"
)

// Project limits are project settings "limit.KEY" (`sphere project set
// --limit KEY=VALUE`), checked by the state machine when a resource is
// created and when files are recorded, so two racing creates can never
// both pass. Lowering a limit below what is in use refuses what comes
// next and takes nothing away.

// LimitPrefix begins every limit's setting key.
const LimitPrefix = "limit."

// LimitStorage is the bytes the files of a project's datasets and models
// may take together.
const LimitStorage = "dataset-storage"

// LimitKeys are the limits, in the order they are shown: storage, then the
// count of each resource type.
var LimitKeys = []string{LimitStorage, "datasets", "models", "secrets", "s3-connectors", "images", "nodes", "aliases", "dataproc-templates"}

// limitedType is the resource type each count limit counts.
var limitedType = map[string]string{
	"datasets": TypeDataset, "models": TypeModel, "secrets": TypeSecret, "s3-connectors": TypeS3,
	"images": TypeImage, "nodes": TypeNode, "aliases": TypeAlias, "dataproc-templates": TypeDataprocTemplate,
}

// LimitOf returns project's limit key, if it has one.
func LimitOf(project *Entity, key string) (int64, bool) {
	n, err := strconv.ParseInt(project.Settings[LimitPrefix+key], 10, 64)
	return n, err == nil && n >= 0
}

// Usage is how much of the limit key project uses now.
func (s *State) Usage(project policy.ID, key string) int64 {
	if key == LimitStorage {
		return s.storageUsed(project)
	}
	return int64(len(s.Children(project, policy.KindResource, limitedType[key])))
}

// storageUsed is the bytes of every dataset's and model's files in project.
func (s *State) storageUsed(project policy.ID) int64 {
	var n int64
	for _, e := range s.Children(project, policy.KindResource, "") {
		if HoldsFiles(e.Type) {
			size, _ := s.DatasetUsage(e.ID)
			n += size
		}
	}
	return n
}

// CheckCountLimit refuses a new resource of type typ in project past the
// project's limit on their number (CodeNoSpace: through a mount, ENOSPC).
func (s *State) CheckCountLimit(project *Entity, typ string) error {
	for key, t := range limitedType {
		if t != typ {
			continue
		}
		if limit, ok := LimitOf(project, key); ok {
			if used := s.Usage(project.ID, key); used >= limit {
				return Errorf(CodeNoSpace, "project %s has %d %s; its limit %s%s is %d (raise it with `sphere project set %s --limit %s=N`)",
					s.Path(project.ID), used, key, LimitPrefix, key, limit, s.Path(project.ID), key)
			}
		}
	}
	return nil
}

// SpaceLeft is how many bytes the dataset (or model) may still grow by,
// under its own size limit and its project's storage limit, whichever is
// tighter, and that limit in words; -1 and "" when neither is set.
func (s *State) SpaceLeft(dataset policy.ID) (int64, string) {
	free, rule := int64(-1), ""
	e, ok := s.Entities[dataset]
	if !ok {
		return free, rule
	}
	used, _ := s.DatasetUsage(dataset)
	if limit := SizeLimit(e); limit > 0 {
		free, rule = max(limit-used, 0), fmt.Sprintf("the dataset's size limit of %d bytes", limit)
	}
	if p, ok := s.Entities[e.Parent]; ok {
		if limit, ok := LimitOf(p, LimitStorage); ok {
			if left := max(limit-s.storageUsed(p.ID), 0); free < 0 || left < free {
				free, rule = left, fmt.Sprintf("project %s's limit %s%s of %d bytes", s.Path(p.ID), LimitPrefix, LimitStorage, limit)
			}
		}
	}
	return free, rule
}
