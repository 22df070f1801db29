package cluster

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// Entity is one node of the organization tree: an organization, community,
// project, resource, cloud, folder or service account.
type Entity struct {
	ID          policy.ID         `json:"id"`
	Kind        policy.Kind       `json:"kind"`
	Type        string            `json:"type,omitempty"` // resources: secret, dataset, s3, ...
	Name        string            `json:"name"`
	Parent      policy.ID         `json:"parent"`
	Description string            `json:"description,omitempty"`
	Creator     policy.ID         `json:"creator"`
	Created     time.Time         `json:"created"`
	Modified    time.Time         `json:"modified"`
	Settings    map[string]string `json:"settings,omitempty"`
	// Sealed is a secret's value, encrypted by the daemon before it reached
	// Raft; the state machine never sees plaintext.
	Sealed []byte `json:"sealed,omitempty"`
	// SecretLen is the plaintext length, so attributes need no decryption.
	SecretLen int `json:"secret_len,omitempty"`
	// DataKey is a project's data key, wrapped by the master key.
	DataKey []byte `json:"data_key,omitempty"`
	// Spec is the descriptor of an image, node, alias, Data Proc template
	// or model (spec.go), as the state machine encoded it: canonical JSON.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// User is a registered person, identified on a host by their uid.
type User struct {
	ID      policy.ID `json:"id"`
	Name    string    `json:"name"`
	UID     uint32    `json:"uid"`
	Created time.Time `json:"created"`
	// Description says who this is, for the people managing users.
	Description string `json:"description,omitempty"`
	// TokenHash is the SHA-256 of the user's API token, for remote callers.
	TokenHash []byte `json:"token_hash,omitempty"`
}

// Publication makes a resource usable in a community's projects.
type Publication struct {
	Resource  policy.ID `json:"resource"`
	Community policy.ID `json:"community"`
}

// childKey identifies a name among its siblings: names are unique per parent,
// kind and resource type (a secret and a dataset may share a name; they live
// in different folders of a mount).
type childKey struct {
	parent policy.ID
	kind   policy.Kind
	typ    string
	name   string
}

// State is the replicated state. It is only changed by the dispatcher, on
// every node in the same order, so every change must be deterministic.
type State struct {
	NextID   policy.ID
	KeyCheck []byte
	Entities map[policy.ID]*Entity
	Users    map[policy.ID]*User
	// Datasets holds each dataset's files by path; the bytes are in the
	// blob store, content-addressed by the chunks' hashes.
	Datasets map[policy.ID]map[string]*DatasetFile
	// Members are the cluster's nodes as they registered (membership.go).
	Members map[string]Member
	// Sweep is where sweeping unreferenced blobs stands (sweep.go).
	Sweep SweepState
	// Applied is the Raft index of the last command applied, so a reader
	// can wait for an index (linearizable reads) and a state hash names
	// the point it was taken at.
	Applied uint64
	// requests remembers recent requests' outcomes, so that a retried
	// command applies once (requests.go).
	requests requestLog

	// Bindings and publications live only in the policy index, which is
	// their single source of truth; snapshots read them back from it.
	children map[childKey]policy.ID
	// kids lists each entity's children, so listing one directory of a
	// mount does not scan every entity of every organization.
	kids   map[policy.ID]map[policy.ID]struct{}
	byUID  map[uint32]policy.ID
	byName map[string]policy.ID
	index  *policy.Index
	// datasetIndexes keeps each dataset's usage and directories
	// (datasetindex.go).
	datasetIndexes map[policy.ID]*datasetIndex
	// blobRefs counts the chunks of all files that name each blob, by
	// hash and generation (sweep.go, datasetindex.go).
	blobRefs map[string]map[uint64]int
}

// NewState returns an empty state holding only the well-known entities.
func NewState() *State {
	s := &State{
		NextID:   policy.FirstAssigned,
		Entities: map[policy.ID]*Entity{},
		Users:    map[policy.ID]*User{},
		Datasets: map[policy.ID]map[string]*DatasetFile{},
		Members:  map[string]Member{},
	}
	s.rebuild(nil, nil)
	return s
}

// rebuild recomputes every derived index from the stored fields and the given
// bindings and publications; it runs after a snapshot is restored.
func (s *State) rebuild(bindings []BindingRecord, pubs []Publication) {
	s.children = map[childKey]policy.ID{}
	s.kids = map[policy.ID]map[policy.ID]struct{}{}
	s.indexDatasets()
	s.byUID = map[uint32]policy.ID{0: policy.Bootstrap}
	s.byName = map[string]policy.ID{"root": policy.Bootstrap}
	if s.index == nil {
		s.index = policy.NewIndex()
	} else {
		s.index.Reset()
	}
	for _, u := range s.Users {
		s.byUID[u.UID] = u.ID
		s.byName[u.Name] = u.ID
		mustPolicy(s.index.PutPrincipal(policy.Principal{ID: u.ID, Kind: policy.PrincipalUser, Name: u.Name}))
	}
	// Parents before children: IDs grow with creation order.
	for _, e := range s.sortedEntities() {
		s.link(e)
		mustPolicy(s.index.PutEntity(policyEntity(e)))
		if e.Kind == policy.KindServiceAccount {
			mustPolicy(s.index.PutPrincipal(policy.Principal{ID: e.ID, Kind: policy.PrincipalServiceAccount, Name: e.Name}))
		}
	}
	for _, b := range bindings {
		role, err := policy.ParseRole(b.Role)
		mustPolicy(err)
		mustPolicy(s.index.Grant(policy.Binding{Principal: b.Principal, Role: role, On: b.On}))
	}
	for _, p := range pubs {
		mustPolicy(s.index.Publish(p.Resource, p.Community))
	}
}

// mustPolicy panics: a stored state the policy index refuses means the state
// is corrupt, and serving from it would diverge from the other nodes.
func mustPolicy(err error) {
	if err != nil {
		panic("cluster: state refused by policy index: " + err.Error())
	}
}

// policyEntity is how policy sees an entity. A resource is named with its
// folder, so explanations show the path it has in a mount.
func policyEntity(e *Entity) policy.Entity {
	name := e.Name
	if e.Kind == policy.KindResource {
		name = typeFolder[e.Type] + "/" + e.Name
	}
	return policy.Entity{ID: e.ID, Kind: e.Kind, Parent: e.Parent, Name: name}
}

func keyOf(e *Entity) childKey {
	return childKey{parent: e.Parent, kind: e.Kind, typ: e.Type, name: e.Name}
}

func (s *State) sortedEntities() []*Entity {
	out := make([]*Entity, 0, len(s.Entities))
	for _, e := range s.Entities {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Index is the policy index kept in step with this state.
func (s *State) Index() *policy.Index { return s.index }

// Child finds a child by name.
func (s *State) Child(parent policy.ID, kind policy.Kind, typ, name string) (*Entity, bool) {
	id, ok := s.children[childKey{parent, kind, typ, name}]
	if !ok {
		return nil, false
	}
	return s.Entities[id], true
}

// Children lists an entity's children of one kind (and type, for
// resources; "" for all types), sorted by name.
func (s *State) Children(parent policy.ID, kind policy.Kind, typ string) []*Entity {
	var out []*Entity
	for id := range s.kids[parent] {
		if e := s.Entities[id]; e.Kind == kind && (typ == "" || e.Type == typ) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// allChildren lists every child of an entity, oldest first, so what the
// dispatcher reports about them is the same on every node.
func (s *State) allChildren(parent policy.ID) []*Entity {
	var out []*Entity
	for id := range s.kids[parent] {
		out = append(out, s.Entities[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// link records a new entity in the name and parent indexes.
func (s *State) link(e *Entity) {
	s.children[keyOf(e)] = e.ID
	if s.kids[e.Parent] == nil {
		s.kids[e.Parent] = map[policy.ID]struct{}{}
	}
	s.kids[e.Parent][e.ID] = struct{}{}
}

// unlink drops an entity from the name and parent indexes.
func (s *State) unlink(e *Entity) {
	delete(s.children, keyOf(e))
	delete(s.kids[e.Parent], e.ID)
	delete(s.kids, e.ID)
}

// UserByUID maps a uid to its user principal; policy.Bootstrap for uid 0.
func (s *State) UserByUID(uid uint32) (policy.ID, bool) {
	id, ok := s.byUID[uid]
	return id, ok
}

// UserByName finds a user ("root" is uid 0's principal).
func (s *State) UserByName(name string) (policy.ID, bool) {
	id, ok := s.byName[name]
	return id, ok
}

// PrincipalName names a principal for people.
func (s *State) PrincipalName(id policy.ID) string {
	switch id {
	case policy.Bootstrap:
		return "root"
	case policy.AllUsers:
		return "allUsers"
	case policy.AllAuthenticatedUsers:
		return "allAuthenticatedUsers"
	case policy.Anonymous:
		return "anonymous"
	}
	if u, ok := s.Users[id]; ok {
		return u.Name
	}
	if e, ok := s.Entities[id]; ok && e.Kind == policy.KindServiceAccount {
		return "service-account:" + s.Path(id)
	}
	return "unknown"
}

// Path is an entity's slash-separated path from its organization, the way
// references and mounts name it (resources include their type folder).
func (s *State) Path(id policy.ID) string {
	var parts []string
	for id != policy.System {
		e, ok := s.Entities[id]
		if !ok {
			return ""
		}
		parts = append(parts, e.Name)
		if e.Kind == policy.KindResource {
			parts = append(parts, typeFolder[e.Type])
		}
		id = e.Parent
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "/"
		}
		out += p
	}
	return out
}

// typeFolder maps a resource type to its folder: ResourceTypes inverted.
var typeFolder = func() map[string]string {
	m := make(map[string]string, len(ResourceTypes))
	for folder, typ := range ResourceTypes {
		m[typ] = folder
	}
	return m
}()

// keys returns a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Org returns the organization an entity belongs to.
func (s *State) Org(id policy.ID) policy.ID {
	for {
		e, ok := s.Entities[id]
		if !ok {
			return 0
		}
		if e.Kind == policy.KindOrg {
			return id
		}
		id = e.Parent
	}
}

// Resolve finds the entity a reference names.
func (s *State) Resolve(r Ref) (*Entity, error) {
	kinds := refKinds[r.Kind]
	parent := policy.System
	var e *Entity
	for i, seg := range r.Path {
		if r.Kind == RefResource && i == 3 {
			continue
		}
		typ := ""
		if r.Kind == RefResource && i == 4 {
			typ = ResourceTypes[r.Path[3]]
		}
		var ok bool
		e, ok = s.Child(parent, kinds[i], typ, seg)
		if !ok {
			return nil, notFound(r, i)
		}
		parent = e.ID
	}
	if e == nil {
		return nil, ErrNotFound
	}
	return e, nil
}

var refKinds = map[RefKind][]policy.Kind{
	RefOrg:            {policy.KindOrg},
	RefCommunity:      {policy.KindOrg, policy.KindCommunity},
	RefProject:        {policy.KindOrg, policy.KindCommunity, policy.KindProject},
	RefResource:       {policy.KindOrg, policy.KindCommunity, policy.KindProject, 0, policy.KindResource},
	RefCloud:          {policy.KindOrg, policy.KindCloud},
	RefFolder:         {policy.KindOrg, policy.KindCloud, policy.KindFolder},
	RefServiceAccount: {policy.KindOrg, policy.KindCloud, policy.KindFolder, policy.KindServiceAccount},
}
