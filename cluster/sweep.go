package cluster

import (
	"encoding/hex"
	"slices"
	"strings"

	"github.com/sphere-sandbox/sphere/policy"
)

// Sweeping unreferenced blobs out of the blob store. Writers dedup: a chunk
// already stored is not uploaded again, and the file naming it is committed
// later. So "unreferenced now" cannot be a reason to delete a blob unless
// every later commit is checked against what was deleted. Generations do
// that without timing assumptions (daemon/datastore/DESIGN.md has the
// argument):
//
//   - Blobs are named by hash and generation; a writer writes every blob of
//     a file in the generation its node's state was in when it started.
//   - CmdSweep starts generation Epoch+1 and dooms, of the blobs a sweeper
//     listed, those of an older generation that no file references at
//     apply. Only doomed blobs are ever deleted, by anyone, at any time.
//   - A file commit is accepted only if each chunk's blob is named by a
//     file already, or is of the current generation, or of the one before
//     and not doomed now. So a doomed blob is never referenced again, a
//     straggling delete harms nobody, and a writer that raced a sweep
//     fails visibly instead of committing a reference to a deleted blob.
//   - Writers name a blob a file already names instead of uploading the
//     chunk again, whatever its generation: dedup across generations.

// CmdSweep dooms unreferenced blobs and starts a new generation.
const CmdSweep CommandType = "blobs.sweep"

// Blob names a stored chunk: its hash and the generation it was written in.
type Blob struct {
	Hash string `json:"h"`
	Gen  uint64 `json:"g,omitempty"`
}

// Sweep is the payload of CmdSweep: the blobs a sweeper found unreferenced
// (and older than its grace).
type Sweep struct {
	Candidates []Blob `json:"candidates"`
}

// SweepState is the replicated part of sweeping.
type SweepState struct {
	// Epoch is the current generation: the number of sweeps begun.
	Epoch uint64 `json:"epoch"`
	// Doomed lists, by hash, the generations of the blobs the last sweep
	// doomed; each list sorted.
	Doomed map[string][]uint64 `json:"doomed,omitempty"`
}

// MaxSweepCandidates bounds one sweep: the doomed set is replicated and
// kept in every snapshot until the next sweep; what is left over is
// found again by the next one.
const MaxSweepCandidates = 100_000

func init() {
	handlers[CmdSweep] = applySweep
}

func applySweep(s *State, c *Command) (policy.ID, error) {
	p := decode[Sweep](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	if len(p.Candidates) > MaxSweepCandidates {
		return 0, Errorf(CodeInvalid, "a sweep dooms at most %d blobs at a time, not %d", MaxSweepCandidates, len(p.Candidates))
	}
	doomed := map[string][]uint64{}
	for _, b := range p.Candidates {
		if _, err := hex.DecodeString(b.Hash); err != nil || len(b.Hash) != 64 || strings.ToLower(b.Hash) != b.Hash {
			return 0, Errorf(CodeInvalid, "blob hash %q is not a SHA-256 in lowercase hex", b.Hash)
		}
		// Blobs of the generation ending now are doomed too: their
		// writers, if any are left, commit into the next one and are
		// checked there.
		if b.Gen > s.Sweep.Epoch || s.Referenced(b) || slices.Contains(doomed[b.Hash], b.Gen) {
			continue
		}
		doomed[b.Hash] = append(doomed[b.Hash], b.Gen)
	}
	for _, gens := range doomed {
		slices.Sort(gens)
	}
	s.Sweep = SweepState{Epoch: s.Sweep.Epoch + 1, Doomed: doomed}
	return 0, nil
}

// Referenced reports whether some dataset or model file names the blob.
func (s *State) Referenced(b Blob) bool { return s.blobRefs[b.Hash][b.Gen] > 0 }

// ReferencedGen is the newest generation in which a file names a blob of
// hash: a writer may name that blob too instead of uploading the chunk.
func (s *State) ReferencedGen(hash string) (gen uint64, ok bool) {
	for g := range s.blobRefs[hash] {
		gen, ok = max(gen, g), true
	}
	return gen, ok
}

// DoomedBlobs is what the last sweep doomed, for its sweeper to delete.
func (s *State) DoomedBlobs() []Blob {
	var out []Blob
	for h, gens := range s.Sweep.Doomed {
		for _, g := range gens {
			out = append(out, Blob{Hash: h, Gen: g})
		}
	}
	return out
}

// usableChunk checks a chunk a file is being committed with: its blob may
// not have been swept (see above).
func (s *State) usableChunk(ch Chunk) error {
	switch {
	case s.Referenced(Blob{Hash: ch.Hash, Gen: ch.Gen}): // never doomed since, so still there
		return nil
	case ch.Gen == s.Sweep.Epoch:
		return nil
	case ch.Gen > s.Sweep.Epoch:
		return Errorf(CodeInvalid, "chunk %s is of generation %d; the blob store is in generation %d", ch.Hash, ch.Gen, s.Sweep.Epoch)
	case ch.Gen+1 == s.Sweep.Epoch && !slices.Contains(s.Sweep.Doomed[ch.Hash], ch.Gen):
		return nil
	}
	return Errorf(CodeConflict, "the blob store was swept while this file was being written (chunk %s of generation %d may be gone): write the file again", ch.Hash, ch.Gen)
}
