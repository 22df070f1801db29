// Package api holds the daemon's wire types and its client. The CLI and the
// daemon share them; nothing here decides anything.
package api

import (
	"encoding/json"
	"time"
)

// Method names, one per call; each is served at POST /v1/<method>.
const (
	MWhoAmI        = "whoami"
	MUserAdd       = "user.add"
	MUserList      = "user.list"
	MUserShow      = "user.show"
	MUserRemove    = "user.remove"
	MUserToken     = "user.token"
	MUserSet       = "user.set"
	MCreate        = "entity.create"
	MList          = "entity.list"
	MShow          = "entity.show"
	MSet           = "entity.set"
	MDelete        = "entity.delete"
	MRoleGrant     = "role.grant"
	MRoleRevoke    = "role.revoke"
	MRoleList      = "role.list"
	MShare         = "share"
	MUnshare       = "unshare"
	MAccessCheck   = "access.check"
	MSecretPut     = "secret.put"
	MSecretEnv     = "secret.env"
	MMount         = "mount"
	MUmount        = "umount"
	MMountList     = "mount.list"
	MDatasetCreate = "dataset.create"
	MDatasetSeal   = "dataset.seal"
	// MDatasetUpload streams one file's bytes as the request body (not
	// JSON): POST /v1/dataset.upload?dataset=REF&path=P&mtime=UNIXNANO.
	MDatasetUpload = "dataset.upload"
	MS3Create      = "s3.create"
	MS3Activate    = "s3.activate"
	MClusterStatus = "cluster.status"
	MSnapshot      = "cluster.snapshot"
)

// Error is the body of a failed call. Code is one of cluster's ErrCodes.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WhoAmI describes the caller as the daemon sees them.
type WhoAmI struct {
	UID        uint32   `json:"uid"`
	Principal  string   `json:"principal"`
	Registered bool     `json:"registered"`
	Groups     []string `json:"groups"`
}

// User is a registered user.
type User struct {
	ID          uint64    `json:"id"`
	Name        string    `json:"name"`
	UID         uint32    `json:"uid"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	HasToken    bool      `json:"has_token"`
}

// Entity is an organization, community, project, resource, cloud, folder or
// service account as a caller may see it.
type Entity struct {
	ID          uint64            `json:"id"`
	Kind        string            `json:"kind"`
	Type        string            `json:"type,omitempty"`
	Name        string            `json:"name"`
	Path        string            `json:"path"`
	Description string            `json:"description,omitempty"`
	Creator     string            `json:"creator"`
	Created     time.Time         `json:"created"`
	Modified    time.Time         `json:"modified"`
	Settings    map[string]string `json:"settings,omitempty"`
	// Owner is the project a resource belongs to, when it is listed in
	// another project through a publication.
	Owner       string    `json:"owner,omitempty"`
	PublishedTo []string  `json:"published_to,omitempty"`
	Members     []Binding `json:"members,omitempty"`
	Size        int64     `json:"size,omitempty"`
	Files       int       `json:"files,omitempty"` // datasets and models: how many files
	// Spec is the descriptor of an image, node, alias, Data Proc template
	// or model.
	Spec json.RawMessage `json:"spec,omitempty"`
	// Limits are a project's limits and what it uses of each (show only).
	Limits []LimitUse `json:"limits,omitempty"`
}

// LimitUse is one limit of a project: what it uses, and the limit (nil:
// none set).
type LimitUse struct {
	Name  string `json:"name"`
	Used  int64  `json:"used"`
	Limit *int64 `json:"limit"`
}

// Binding is a role binding.
type Binding struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	On        string `json:"on"`
}

// Requests.
type (
	UserAddReq struct {
		Name        string `json:"name"`
		UID         uint32 `json:"uid"`
		Description string `json:"description,omitempty"`
	}
	// UserSetReq changes what it holds; nil fields stay.
	UserSetReq struct {
		Name        string  `json:"name"`
		UID         *uint32 `json:"uid,omitempty"`
		Description *string `json:"description,omitempty"`
	}
	NameReq struct {
		Name string `json:"name"`
	}
	CreateReq struct {
		Ref         string            `json:"ref"`
		Description string            `json:"description,omitempty"`
		Settings    map[string]string `json:"settings,omitempty"`
		// Spec is a resource's descriptor: images, nodes, aliases, Data
		// Proc templates and models are created with this call.
		Spec json.RawMessage `json:"spec,omitempty"`
	}
	RefReq struct {
		Ref string `json:"ref"`
	}
	ListReq struct {
		Kind   string `json:"kind"`
		Parent string `json:"parent,omitempty"` // a path, or "" for everything visible
		Type   string `json:"type,omitempty"`   // resources: secret, dataset, s3
	}
	SetReq struct {
		Ref         string            `json:"ref"`
		Description *string           `json:"description,omitempty"`
		Settings    map[string]string `json:"settings,omitempty"`
		Unset       []string          `json:"unset,omitempty"`
		// Spec replaces the descriptor fields it holds.
		Spec json.RawMessage `json:"spec,omitempty"`
	}
	GrantReq struct {
		Role      string `json:"role"`
		Principal string `json:"principal"` // user:NAME, service-account:ORG/CLOUD/F/NAME, group:allUsers
		On        string `json:"on"`        // KIND:PATH
	}
	ShareReq struct {
		Resource  string `json:"resource"`  // resource:ORG/C/P/TYPE/NAME
		Community string `json:"community"` // ORG/C
	}
	CheckReq struct {
		As     string `json:"as,omitempty"` // a principal; the caller when empty
		Action string `json:"action"`
		Target string `json:"target"`         // KIND:PATH
		Via    string `json:"via,omitempty"`  // KIND:PATH: the community for publish, or the project for a published resource
		Role   string `json:"role,omitempty"` // for grant/revoke
	}
	SecretPutReq struct {
		Project string `json:"project"`
		Name    string `json:"name"`
		Value   []byte `json:"value"`
		Replace bool   `json:"replace,omitempty"`
	}
	ProjectReq struct {
		Project string `json:"project"`
	}
	MountReq struct {
		Project string `json:"project"`
		Dir     string `json:"dir"`
	}
	DirReq struct {
		Dir string `json:"dir"`
	}
	TokenReply struct {
		Token string `json:"token"`
	}
	DatasetCreateReq struct {
		Project     string `json:"project"`
		Name        string `json:"name"`
		SizeLimit   int64  `json:"size_limit,omitempty"`
		Description string `json:"description,omitempty"`
	}
	S3CreateReq struct {
		Project     string `json:"project"`
		Name        string `json:"name"`
		Endpoint    string `json:"endpoint"`
		Bucket      string `json:"bucket"`
		KeyID       string `json:"key_id"`
		KeySecret   string `json:"key_secret"` // the name of a project secret holding the key's value
		Mode        string `json:"mode,omitempty"`
		Backend     string `json:"backend,omitempty"`
		Description string `json:"description,omitempty"`
	}
	S3ActivateReq struct {
		Ref    string `json:"ref"`
		Active bool   `json:"active"`
	}
	// SecretEnv is the secrets a caller may read in a project, for `sphere exec`.
	SecretEnv struct {
		Env map[string]string `json:"env"`
	}
	// Mount is a project mounted on this node.
	Mount struct {
		Project string `json:"project"`
		Dir     string `json:"dir"`
	}
)

// Cluster membership methods (MClusterStatus and MSnapshot are above).
const (
	MClusterJoin   = "cluster.join"
	MClusterRemove = "cluster.remove"
	MClusterSweep  = "cluster.sweep"
)

// HeaderConsistency asks for a read consistency; Linearizable is the only
// value besides the default (the answering node's local state): the node
// first catches up with everything the leader committed.
const (
	HeaderConsistency = "Sphere-Read-Consistency"
	Linearizable      = "linearizable"
)

type (
	// ClusterJoinReq adds a node (or moves it to new addresses).
	ClusterJoinReq struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		APIAddr  string `json:"api_addr"`
	}
	// SweepReq sweeps blobs no file references out of the blob store;
	// Grace spares those written less than that long ago.
	SweepReq struct {
		Grace  time.Duration `json:"grace"`
		DryRun bool          `json:"dry_run,omitempty"`
	}
	// SweepReply is what a sweep found and did.
	SweepReply struct {
		Epoch        uint64 `json:"epoch"` // the generation writers write in now
		Blobs        int    `json:"blobs"` // listed in the blob store
		Bytes        int64  `json:"bytes"`
		Referenced   int    `json:"referenced"` // named by a file
		Fresh        int    `json:"fresh"`      // unreferenced, within the grace
		Doomed       int    `json:"doomed"`     // unreferenced, past the grace
		DoomedBytes  int64  `json:"doomed_bytes"`
		Deleted      int    `json:"deleted"`
		DeletedBytes int64  `json:"deleted_bytes"`
		// Left is how many more could be doomed than one sweep takes on.
		Left int `json:"left,omitempty"`
	}
	// ClusterRemoveReq takes a node out of the cluster.
	ClusterRemoveReq struct {
		ID string `json:"id"`
	}
	// ClusterStatus is every node of the cluster as the answering node
	// sees it, each node's figures asked of that node.
	ClusterStatus struct {
		Node   string       `json:"node"`   // the node that answered
		Leader string       `json:"leader"` // the leader it knows; "" when none
		Nodes  []NodeStatus `json:"nodes"`
	}
	// NodeStatus is one node. Health is "ok", or why not: unreachable, no
	// leader (it cannot reach a quorum), or no recent contact with one.
	NodeStatus struct {
		ID                string `json:"id"`
		RaftAddr          string `json:"raft_addr"`
		APIAddr           string `json:"api_addr"`
		Voter             bool   `json:"voter"`
		Leader            bool   `json:"leader"`
		State             string `json:"state,omitempty"` // Leader, Follower, Candidate
		SeesLeader        string `json:"sees_leader,omitempty"`
		Term              uint64 `json:"term,omitempty"`
		CommitIndex       uint64 `json:"commit_index,omitempty"`
		AppliedIndex      uint64 `json:"applied_index,omitempty"`
		LastSnapshotIndex uint64 `json:"last_snapshot_index,omitempty"`
		LastContactMS     int64  `json:"last_contact_ms,omitempty"`
		Health            string `json:"health"`
		// StateHash is the SHA-256 of the node's state at AppliedIndex,
		// shown to administrators: nodes at one index must agree on it.
		StateHash string `json:"state_hash,omitempty"`
	}
)
