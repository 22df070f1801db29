// Package policy decides, for a principal, an action and a target, whether the
// action is allowed and why. It is pure: no I/O, no Raft. The cluster's state
// machine keeps an Index up to date as entities and bindings are applied, so a
// decision never recomputes anything from scratch.
package policy

import (
	"fmt"
	"strings"
)

// ID names an entity or a principal. Entities and principals share one ID
// space (a service account is both), assigned by the state machine.
type ID uint64

// Well-known IDs, fixed so every node agrees on them without a log entry.
const (
	// Anonymous is a caller whose uid is not registered: only AllUsers applies.
	Anonymous ID = 0
	// System is the root of the entity tree; organizations are its children.
	System ID = 1
	// AllUsers is the system group every caller belongs to.
	AllUsers ID = 2
	// AllAuthenticatedUsers is the system group every registered principal belongs to.
	AllAuthenticatedUsers ID = 3
	// Bootstrap is uid 0's principal: it holds admin on System, by a binding
	// like any other (nothing bypasses policy).
	Bootstrap ID = 4
	// FirstAssigned is the first ID the state machine hands out.
	FirstAssigned ID = 100
)

// Kind is the kind of an entity in the tree.
type Kind uint8

const (
	KindSystem Kind = iota + 1
	KindOrg
	KindCommunity
	KindProject
	KindResource // a DataSphere resource of a project (dataset, secret, s3 connector, ...)
	KindCloud
	KindFolder
	KindServiceAccount // a folder resource that accepts bindings of its own
	KindFolderResource // a folder resource that only inherits (folder, then cloud)
)

// PrincipalKind tells users from service accounts (which need no cloud
// membership) and from system groups.
type PrincipalKind uint8

const (
	PrincipalUser PrincipalKind = iota + 1
	PrincipalServiceAccount
	PrincipalGroup
)

// Entity is one node of the hierarchy as policy sees it.
type Entity struct {
	ID     ID
	Kind   Kind
	Parent ID     // System for organizations
	Name   string // for explanations only
}

// Principal is a user, a service account or a system group.
type Principal struct {
	ID   ID
	Kind PrincipalKind
	Name string // for explanations only
}

// Binding gives a principal a role on an entity and everything under it.
type Binding struct {
	Principal ID
	Role      Role
	On        ID
}

// Target is what an action is applied to.
//
// Via is set in two cases: for ActPublishResource/ActUnpublishResource it is
// the community the resource is (un)published to; for actions on a resource
// reached through another project's mount (a published resource) it is that
// project. Role is set for ActGrant/ActRevoke: the role being granted.
type Target struct {
	ID   ID
	Via  ID
	Role Role
}

// Decision is the answer to Decide. It does not allocate on the allow path.
type Decision struct {
	Allowed bool
	// By is the binding that allowed the action (zero when denied).
	By Binding
	// Missing names what a denied caller lacks, e.g.
	// "datasphere.community-projects.developer on the project". It is one of
	// a fixed set of strings, so building a Decision never allocates.
	Missing string
}

var kindNames = [...]string{
	KindSystem:         "system",
	KindOrg:            "organization",
	KindCommunity:      "community",
	KindProject:        "project",
	KindResource:       "resource",
	KindCloud:          "cloud",
	KindFolder:         "folder",
	KindServiceAccount: "service-account",
	KindFolderResource: "folder-resource",
}

func (k Kind) valid() bool { return k >= KindSystem && k <= KindFolderResource }

// String returns the kind's name, e.g. "service-account".
func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// noun is the kind as a sentence reads it ("service account").
func (k Kind) noun() string { return strings.ReplaceAll(k.String(), "-", " ") }

// parentKind is the only kind an entity of each kind may sit under.
var parentKind = [...]Kind{
	KindOrg:            KindSystem,
	KindCommunity:      KindOrg,
	KindProject:        KindCommunity,
	KindResource:       KindProject,
	KindCloud:          KindOrg,
	KindFolder:         KindCloud,
	KindServiceAccount: KindFolder,
	KindFolderResource: KindFolder,
}

var principalKindNames = [...]string{
	PrincipalUser:           "user",
	PrincipalServiceAccount: "service account",
	PrincipalGroup:          "group",
}

func (k PrincipalKind) valid() bool { return k >= PrincipalUser && k <= PrincipalGroup }

// String returns "user", "service account" or "group".
func (k PrincipalKind) String() string {
	if k.valid() {
		return principalKindNames[k]
	}
	return fmt.Sprintf("principal-kind(%d)", uint8(k))
}
