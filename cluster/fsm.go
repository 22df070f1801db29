package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/sphere-sandbox/sphere/policy"
)

// FSM is the Raft state machine: it decodes log entries and hands them to the
// dispatcher under its lock. Readers take the read lock through Read.
type FSM struct {
	mu    sync.RWMutex
	state *State
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns a state machine over an empty state.
func NewFSM() *FSM { return &FSM{state: NewState()} }

// Apply applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		// Every node would fail on this entry differently from a node that
		// skipped it: stop rather than diverge.
		panic(fmt.Sprintf("cluster: undecodable log entry at index %d: %v", l.Index, err))
	}
	f.mu.Lock()
	r := Apply(f.state, &c)
	f.state.Applied = l.Index
	f.mu.Unlock()
	return r
}

// Read runs fn with the state read-locked. fn must not keep references to
// the state's maps or entities after it returns.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Index is the policy index. It has its own lock, so decisions never wait
// for the state lock.
func (f *FSM) Index() *policy.Index { return f.state.index }

// snapshotVersion is the layout of a snapshot.
const snapshotVersion = 1

// snapshot is the serialized state: everything, in a canonical order, so two
// nodes with the same state write the same bytes (tests hash them).
type snapshot struct {
	Version      int             `json:"version"`
	NextID       policy.ID       `json:"next_id"`
	KeyCheck     []byte          `json:"key_check,omitempty"`
	Users        []*User         `json:"users"`
	Entities     []*Entity       `json:"entities"`
	Bindings     []BindingRecord `json:"bindings"`
	Publications []Publication   `json:"publications"`
	// Datasets is keyed by dataset ID; encoding/json sorts map keys, so
	// the encoding stays canonical.
	Datasets map[policy.ID]map[string]*DatasetFile `json:"datasets"`
	Members  []Member                              `json:"members,omitempty"`
	Applied  uint64                                `json:"applied,omitempty"`
	Requests []requestRecord                       `json:"requests,omitempty"`
	Sweep    *SweepState                           `json:"sweep,omitempty"`
}

// Encode writes the whole state canonically.
func (s *State) Encode() ([]byte, error) {
	snap := snapshot{Version: snapshotVersion, NextID: s.NextID, KeyCheck: s.KeyCheck, Entities: s.sortedEntities(), Datasets: s.Datasets,
		Members: s.sortedMembers(), Applied: s.Applied, Requests: s.requests.order}
	if s.Sweep.Epoch > 0 {
		snap.Sweep = &s.Sweep
	}
	for _, u := range s.Users {
		snap.Users = append(snap.Users, u)
	}
	sort.Slice(snap.Users, func(i, j int) bool { return snap.Users[i].ID < snap.Users[j].ID })
	ids := []policy.ID{policy.System}
	for _, e := range snap.Entities {
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		for _, b := range s.index.Bindings(id) {
			snap.Bindings = append(snap.Bindings, BindingRecord{Principal: b.Principal, Role: b.Role.String(), On: b.On})
		}
		for _, c := range s.index.Publications(id) {
			snap.Publications = append(snap.Publications, Publication{Resource: id, Community: c})
		}
	}
	return json.Marshal(snap)
}

// Decode replaces s with a state read by Encode.
func (s *State) Decode(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d, this build reads %d", snap.Version, snapshotVersion)
	}
	s.NextID, s.KeyCheck = snap.NextID, snap.KeyCheck
	s.Entities = make(map[policy.ID]*Entity, len(snap.Entities))
	for _, e := range snap.Entities {
		s.Entities[e.ID] = e
	}
	s.Datasets = snap.Datasets
	if s.Datasets == nil {
		s.Datasets = map[policy.ID]map[string]*DatasetFile{}
	}
	s.Users = make(map[policy.ID]*User, len(snap.Users))
	for _, u := range snap.Users {
		s.Users[u.ID] = u
	}
	s.Members = make(map[string]Member, len(snap.Members))
	for _, m := range snap.Members {
		s.Members[m.ID] = m
	}
	s.Applied = snap.Applied
	s.Sweep = SweepState{}
	if snap.Sweep != nil {
		s.Sweep = *snap.Sweep
	}
	s.requests.restore(snap.Requests)
	s.rebuild(snap.Bindings, snap.Publications)
	return nil
}

// Snapshot captures the state; the bytes are taken under the read lock so
// Persist can write them while new entries apply.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	data, err := f.state.Encode()
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{data: data}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	f.mu.Lock()
	err = f.state.Decode(data)
	f.mu.Unlock()
	return err
}

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
