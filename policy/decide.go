package policy

import "math/bits"

// caller is a principal resolved once per decision: which bindings count
// for it.
type caller struct {
	self          ID   // its own bindings; 0 for anonymous
	authenticated bool // allAuthenticatedUsers' bindings apply
	// needsMembership: a user's own bindings in a cloud count only while it
	// is a member (or owner) of that cloud; service accounts are exempt.
	needsMembership bool
}

// callerOf resolves p. An ID that is not a registered principal is treated
// as anonymous: only allUsers applies to it.
func (ix *Index) callerOf(p ID) caller {
	pr := ix.principals[p]
	if p == Anonymous || pr == nil {
		return caller{}
	}
	switch pr.Kind {
	case PrincipalUser:
		return caller{self: p, authenticated: true, needsMembership: true}
	case PrincipalServiceAccount:
		return caller{self: p, authenticated: true}
	default:
		// A group asking for itself: what every one of its members may do.
		return caller{self: p}
	}
}

// req is one requirement: a capability somewhere on the ancestor chain of at.
type req struct {
	at   *node
	need capMask
}

// plan is what an action on a target takes: up to two requirements (publish
// needs two), or a reason no role could allow it.
type plan struct {
	reqs [2]req
	n    int
	deny string
}

// Reasons a plan is denied whatever the caller holds. They are constants so
// a Decision carries them without allocating.
const (
	denyUnknownAction = "an action of the catalog"
	denyNoEntity      = "an existing target"
	denyNotApplicable = "a target of a kind this action applies to"
	denyNoCommunity   = "a target community (Target.Via) of the same organization"
	denyNoProject     = "a project (Target.Via) of the same organization to reach the resource from"
	denyNotPublished  = "a publication of the resource to the community of the project it is reached from"
	denyReadOnly      = "write access, which a published resource never gives outside its own project"
	denyMembership    = "resource-manager.clouds.member on the cloud (a user needs it for any right in a cloud)"
)

// levelAdmin and levelView are the capabilities managing and listing access
// take at each kind of entity: admin or viewer "of that level".
var levelAdmin, levelView [KindFolderResource + 1]capMask

// capRole names, for each capability, the narrowest role that gives it: the
// role a requirement asks for.
var capRole = [capBits]Role{
	RoleProjectsViewer, RoleProjectsDeveloper, RoleProjectsEditor, RoleProjectsAdmin,
	RoleCommunitiesViewer, RoleCommunitiesDeveloper, RoleCommunitiesEditor, RoleCommunitiesAdmin,
	RoleViewer, RoleEditor, RoleAdmin,
	RoleViewer, RoleEditor, RoleAdmin, RoleCloudsOwner, RoleCloudsMember,
}

// missingText[capability bit][kind] is "ROLE on the KIND", built once so a
// denial does not format anything.
var missingText [capBits][KindFolderResource + 1]string

func init() {
	for k := KindSystem; k <= KindFolderResource; k++ {
		switch k {
		case KindSystem, KindOrg:
			levelAdmin[k], levelView[k] = capAdmin, capView
		case KindCommunity:
			levelAdmin[k], levelView[k] = capCommAdmin, capCommView
		case KindProject, KindResource:
			levelAdmin[k], levelView[k] = capProjAdmin, capProjView
		default:
			levelAdmin[k], levelView[k] = capCloudAdmin, capCloudView
		}
		for i := range capBits {
			missingText[i][k] = capRole[i].String() + " on the " + k.noun()
		}
	}
}

func (r req) missing() string {
	if r.need == capAny {
		return "any role on the " + r.at.kind.noun()
	}
	return missingText[bits.TrailingZeros32(uint32(r.need))][r.at.kind]
}

func denied(reason string) plan { return plan{deny: reason} }

func one(at *node, need capMask) plan { return plan{reqs: [2]req{{at, need}}, n: 1} }

// plan resolves what action a on t requires, without looking at any caller.
func (ix *Index) plan(a Action, t Target) plan {
	if !a.valid() {
		return denied(denyUnknownAction)
	}
	n := ix.nodes[t.ID]
	switch {
	case n == nil:
		return denied(denyNoEntity)
	case !actionCatalog[a].kinds.has(n.kind):
		return denied(denyNotApplicable)
	}
	switch a {
	case ActGrant, ActRevoke:
		if t.Role == RoleCloudsOwner {
			return one(n, capCloudOwner)
		}
		return one(n, levelAdmin[n.kind])
	case ActViewAccess:
		return one(n, levelView[n.kind])
	case ActPublishResource, ActUnpublishResource:
		c := ix.nodes[t.Via]
		if c == nil || c.kind != KindCommunity || c.org != n.org {
			return denied(denyNoCommunity)
		}
		// Editor on the resource's project: a binding on the resource
		// itself does not make one an editor of the project.
		return plan{reqs: [2]req{{n.parent, capProjEdit}, {c, capCommDev}}, n: 2}
	case ActViewResource, ActUseResource, ActEditResource, ActDeleteResource:
		if t.Via == 0 || t.Via == n.parent.id {
			break
		}
		if a == ActEditResource || a == ActDeleteResource {
			return denied(denyReadOnly)
		}
		q := ix.nodes[t.Via]
		if q == nil || q.kind != KindProject || q.org != n.org {
			return denied(denyNoProject)
		}
		if _, ok := n.pubs[q.parent.id]; !ok {
			return denied(denyNotPublished)
		}
		return one(q, actionCatalog[a].need)
	}
	return one(n, actionCatalog[a].need)
}

// acc accumulates, along an ancestor chain, what one set of bindings gives
// and the nearest binding carrying the needed capability.
type acc struct {
	all   capMask
	by    Binding
	depth int
	found bool
}

func (a *acc) add(n *node, p ID, need capMask, depth int) {
	h, ok := n.grants[p]
	if !ok {
		return
	}
	a.all |= h.mask
	if !a.found && h.mask&need != 0 {
		a.by, a.depth, a.found = Binding{Principal: p, Role: h.roleFor(need), On: n.id}, depth, true
	}
}

// satisfy checks one requirement for c: OR of the masks bound on the chain.
// The caller's own bindings and the system groups' are kept apart because in
// a cloud a user's own count only with membership, while the groups' are
// public access and always count. blocked reports that own bindings would
// have satisfied it but membership is missing.
func (ix *Index) satisfy(c caller, r req) (by Binding, ok, blocked bool) {
	var own, pub acc
	depth := 0
	for n := r.at; n != nil; n = n.parent {
		if len(n.grants) != 0 {
			if c.self != 0 {
				own.add(n, c.self, r.need, depth)
			}
			pub.add(n, AllUsers, r.need, depth)
			if c.authenticated {
				pub.add(n, AllAuthenticatedUsers, r.need, depth)
			}
		}
		depth++
	}
	ownCounts := !c.needsMembership || r.at.cloud == nil || (own.all|pub.all)&capMembership != 0
	switch {
	case own.found && ownCounts && (!pub.found || own.depth <= pub.depth):
		return own.by, true, false
	case pub.found:
		return pub.by, true, false
	}
	return Binding{}, false, own.found && !ownCounts
}

// Decide answers whether p may do a on t. It takes a read lock, walks the
// target's ancestors once per requirement and does not allocate.
func (ix *Index) Decide(p ID, a Action, t Target) Decision {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.decide(ix.callerOf(p), a, t)
}

func (ix *Index) decide(c caller, a Action, t Target) Decision {
	pl := ix.plan(a, t)
	if pl.deny != "" {
		return Decision{Missing: pl.deny}
	}
	var d Decision
	for i, r := range pl.reqs[:pl.n] {
		by, ok, blocked := ix.satisfy(c, r)
		switch {
		case blocked:
			return Decision{Missing: denyMembership}
		case !ok:
			return Decision{Missing: r.missing()}
		case i == 0:
			// For publishing, By is the binding on the resource's side.
			d = Decision{Allowed: true, By: by}
		}
	}
	return d
}
