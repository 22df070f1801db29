package policy

import (
	"fmt"
	"math/bits"
	"strings"
)

// Role is a role of the catalog. The zero value is no role; valid roles are
// RoleViewer..RoleCloudsOwner and fit a uint16 bitset (see held).
type Role uint8

const (
	RoleNone Role = iota

	// Primitive roles: what they mean depends on where they are bound.
	RoleViewer
	RoleEditor
	RoleAdmin

	// DataSphere project roles.
	RoleProjectsViewer
	RoleProjectsDeveloper
	RoleProjectsEditor
	RoleProjectsAdmin

	// DataSphere community roles.
	RoleCommunitiesViewer
	RoleCommunitiesDeveloper
	RoleCommunitiesEditor
	RoleCommunitiesAdmin

	// Resource Manager cloud roles.
	RoleCloudsMember
	RoleCloudsOwner

	roleCount
)

// capMask is a set of capabilities. A capability is an ability at one level
// of the tree ("developer of a project"); a role is a set of them, closed
// under the role's inclusions. Because a capability is only ever checked at
// its own level, a role bound on an entity may carry capabilities of levels
// that do not exist under that entity (primitive editor on a project carries
// the community-editor bit): they are simply never looked at there.
type capMask uint32

const (
	capProjView capMask = 1 << iota // datasphere.community-projects.viewer
	capProjDev
	capProjEdit
	capProjAdmin
	capCommView // datasphere.communities.viewer
	capCommDev
	capCommEdit
	capCommAdmin
	capView // primitive viewer of an organization or of the System
	capEdit
	capAdmin
	capCloudView // viewer in the cloud tree
	capCloudEdit
	capCloudAdmin
	capCloudOwner
	capCloudMember

	capBits = iota

	// capAny is "any role at all", what seeing an organization takes.
	capAny capMask = 1<<capBits - 1
	// capMembership is what lets a user's own bindings count in a cloud.
	capMembership = capCloudMember | capCloudOwner
)

// kindSet is a set of entity kinds.
type kindSet uint16

func kinds(ks ...Kind) kindSet {
	var s kindSet
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

func (s kindSet) has(k Kind) bool { return s&(1<<k) != 0 }

var (
	anyBindable   = kinds(KindSystem, KindOrg, KindCommunity, KindProject, KindResource, KindCloud, KindFolder, KindServiceAccount)
	projectLevels = kinds(KindOrg, KindCommunity, KindProject, KindResource)
	communityLvls = kinds(KindOrg, KindCommunity)
	cloudLevels   = kinds(KindOrg, KindCloud)
)

// roleDef is one entry of the catalog as the seeds declare it: the
// capabilities the role adds of its own and the roles it includes. Where a
// role includes two, the one of the narrower level comes first so that
// explanations, searching breadth first, read like the seeds
// (communities.admin → community-projects.admin → …). The
// effective masks (roleMask) are derived from these once, at init; the tests
// check Decide against a graph search over these declarations.
type roleDef struct {
	name     string
	grants   capMask
	includes []Role
	bindable kindSet
}

var roleCatalog = [roleCount]roleDef{
	RoleViewer: {"viewer", capView | capCloudView,
		[]Role{RoleCommunitiesViewer}, anyBindable},
	RoleEditor: {"editor", capEdit | capCloudEdit,
		[]Role{RoleCommunitiesEditor, RoleViewer}, anyBindable},
	RoleAdmin: {"admin", capAdmin | capCloudAdmin,
		[]Role{RoleCommunitiesAdmin, RoleEditor}, anyBindable},

	RoleProjectsViewer: {"datasphere.community-projects.viewer", capProjView,
		nil, projectLevels},
	RoleProjectsDeveloper: {"datasphere.community-projects.developer", capProjDev,
		[]Role{RoleProjectsViewer}, projectLevels},
	RoleProjectsEditor: {"datasphere.community-projects.editor", capProjEdit,
		[]Role{RoleProjectsDeveloper}, projectLevels},
	RoleProjectsAdmin: {"datasphere.community-projects.admin", capProjAdmin,
		[]Role{RoleProjectsEditor}, projectLevels},

	RoleCommunitiesViewer: {"datasphere.communities.viewer", capCommView,
		[]Role{RoleProjectsViewer}, communityLvls},
	// The seed is explicit: communities.developer does not include
	// community-projects.developer (creating projects is not working in them).
	RoleCommunitiesDeveloper: {"datasphere.communities.developer", capCommDev,
		[]Role{RoleCommunitiesViewer}, communityLvls},
	RoleCommunitiesEditor: {"datasphere.communities.editor", capCommEdit,
		[]Role{RoleProjectsEditor, RoleCommunitiesDeveloper}, communityLvls},
	RoleCommunitiesAdmin: {"datasphere.communities.admin", capCommAdmin,
		[]Role{RoleProjectsAdmin, RoleCommunitiesEditor}, communityLvls},

	RoleCloudsMember: {"resource-manager.clouds.member", capCloudMember,
		nil, cloudLevels},
	// The owner carries the cloud-tree capabilities directly rather than
	// including admin: admin would also make an owner bound on an
	// organization that organization's administrator.
	RoleCloudsOwner: {"resource-manager.clouds.owner",
		capCloudOwner | capCloudAdmin | capCloudEdit | capCloudView,
		nil, cloudLevels},
}

// roleMask is the inclusion closure of each role, so a decision ORs masks
// instead of walking the inclusion graph.
var roleMask [roleCount]capMask

func init() {
	for r := Role(1); r < roleCount; r++ {
		roleMask[r] = roleCatalog[r].grants
	}
	// Fixed point: the catalog is tiny and acyclic, a few rounds settle it.
	for changed := true; changed; {
		changed = false
		for r := Role(1); r < roleCount; r++ {
			m := roleMask[r]
			for _, inc := range roleCatalog[r].includes {
				m |= roleMask[inc]
			}
			if m != roleMask[r] {
				roleMask[r], changed = m, true
			}
		}
	}
}

func (r Role) valid() bool { return r > RoleNone && r < roleCount }

// String returns the role's catalog name, e.g. "datasphere.communities.admin".
func (r Role) String() string {
	if r.valid() {
		return roleCatalog[r].name
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole returns the role with that catalog name.
func ParseRole(name string) (Role, error) {
	for r := Role(1); r < roleCount; r++ {
		if roleCatalog[r].name == name {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("%w %q: roles are %s", ErrUnknownRole, name, roleNames())
}

func roleNames() string {
	names := make([]string, 0, roleCount-1)
	for r := Role(1); r < roleCount; r++ {
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
}

// Roles returns every role of the catalog, primitives first.
func Roles() []Role {
	rs := make([]Role, 0, roleCount-1)
	for r := Role(1); r < roleCount; r++ {
		rs = append(rs, r)
	}
	return rs
}

// BindableOn reports whether the role may be bound on an entity of kind k.
func (r Role) BindableOn(k Kind) bool { return r.valid() && roleCatalog[r].bindable.has(k) }

// held is what one principal holds on one entity: the roles (a bitset indexed
// by Role) and the union of their masks, kept together so a decision reads
// the mask and only looks at the roles to name the decisive binding.
type held struct {
	roles uint16
	mask  capMask
}

func (h held) with(r Role) held {
	h.roles |= 1 << r
	h.mask |= roleMask[r]
	return h
}

func (h held) without(r Role) held {
	h.roles &^= 1 << r
	h.mask = 0
	for rs := h.roles; rs != 0; rs &= rs - 1 {
		h.mask |= roleMask[bits.TrailingZeros16(rs)]
	}
	return h
}

func (h held) has(r Role) bool { return h.roles&(1<<r) != 0 }

// roleFor names the narrowest held role carrying need (the one with the
// fewest capabilities), so an explanation cites the closest fit.
func (h held) roleFor(need capMask) Role {
	best, bestN := RoleNone, capBits+1
	for rs := h.roles; rs != 0; rs &= rs - 1 {
		r := Role(bits.TrailingZeros16(rs))
		if n := bits.OnesCount32(uint32(roleMask[r])); roleMask[r]&need != 0 && n < bestN {
			best, bestN = r, n
		}
	}
	return best
}

// String lists the kinds as a sentence reads them: "organization, community".
func (s kindSet) String() string {
	var names []string
	for k := KindSystem; k <= KindFolderResource; k++ {
		if s.has(k) {
			names = append(names, k.noun())
		}
	}
	return strings.Join(names, ", ")
}
