package policy

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Explanation is why a decision came out as it did: what `sphere access
// check` prints (String for people, JSON for scripts). Its verdict is always
// the one Decide gives.
type Explanation struct {
	Allowed   bool   `json:"allowed"`
	Action    string `json:"action"`
	Principal string `json:"principal"`
	// Target is the path of names from the organization down, e.g.
	// "acme/cats/p1/secrets/TOKEN".
	Target string `json:"target"`
	Via    string `json:"via,omitempty"`
	Role   string `json:"role,omitempty"` // the role granted or revoked
	Rule   string `json:"rule"`
	// Missing is set when no role could allow the action (no such target,
	// not published there, read-only, ...); Requirements is then empty.
	Missing      string        `json:"missing,omitempty"`
	Requirements []Requirement `json:"requirements"`
}

// Requirement is one role the action needs on one entity.
type Requirement struct {
	Need      string `json:"need"` // a role name, or "any role"
	On        string `json:"on"`   // entity path
	Satisfied bool   `json:"satisfied"`
	// Grant is the binding that satisfies it; when not satisfied, it may be
	// the binding that would have, had the user been a member of the cloud.
	Grant   *Chain `json:"grant,omitempty"`
	Missing string `json:"missing,omitempty"`
}

// Chain is how a binding reaches a requirement: bound on an ancestor (or
// the entity itself), then through the role's inclusions.
type Chain struct {
	Principal string `json:"principal"` // the principal or system group bound
	Role      string `json:"role"`
	On        string `json:"on"`
	// Through is the inclusion path, the bound role first and the needed
	// role last (a single element when the role gives it directly).
	Through []string `json:"through"`
	// Public: bound to a system group, so no cloud membership is needed.
	Public bool `json:"public,omitempty"`
}

// Explain decides like Decide and says why, naming the bindings and
// inclusions involved. It allocates; use it for people, not for every call.
func (ix *Index) Explain(p ID, a Action, t Target) Explanation {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	c := ix.callerOf(p)
	e := Explanation{
		Allowed:   ix.decide(c, a, t).Allowed,
		Action:    a.String(),
		Principal: ix.principalName(p),
		Target:    ix.entityPath(t.ID),
		Rule:      a.Rule(),
	}
	if t.Via != 0 {
		e.Via = ix.entityPath(t.Via)
	}
	if t.Role != RoleNone {
		e.Role = t.Role.String()
	}
	pl := ix.plan(a, t)
	if pl.deny != "" {
		e.Missing = pl.deny
		return e
	}
	for _, r := range pl.reqs[:pl.n] {
		e.Requirements = append(e.Requirements, ix.explainReq(c, r)...)
	}
	return e
}

// explainReq explains one requirement and, for a user in a cloud relying on
// its own bindings, the membership requirement that comes with it.
func (ix *Index) explainReq(c caller, r req) []Requirement {
	rq := Requirement{Need: needName(r.need), On: r.at.path()}
	by, ok, blocked := ix.satisfy(c, r)
	switch {
	case ok:
		rq.Satisfied, rq.Grant = true, ix.chain(by, r.need)
	case blocked:
		exempt := c
		exempt.needsMembership = false
		by, _, _ = ix.satisfy(exempt, r)
		rq.Grant, rq.Missing = ix.chain(by, r.need), "this binding counts only for a member (or owner) of the cloud"
	default:
		rq.Missing = r.missing()
	}
	out := []Requirement{rq}
	if !c.needsMembership || r.at.cloud == nil || (ok && rq.Grant.Public) {
		return out
	}
	m := Requirement{Need: RoleCloudsMember.String() + " (or owner)", On: r.at.cloud.path()}
	if mb, mok, _ := ix.satisfy(caller{self: c.self, authenticated: c.authenticated}, req{r.at, capMembership}); mok {
		m.Satisfied, m.Grant = true, ix.chain(mb, capMembership)
	} else {
		m.Missing = denyMembership
	}
	return append(out, m)
}

func needName(need capMask) string {
	switch need {
	case capAny:
		return "any role"
	case capMembership:
		return RoleCloudsMember.String()
	}
	return capRole[bits.TrailingZeros32(uint32(need))].String()
}

func (ix *Index) chain(b Binding, need capMask) *Chain {
	through := []Role{b.Role}
	if bits.OnesCount32(uint32(need)) == 1 {
		through = inclusionPath(b.Role, capRole[bits.TrailingZeros32(uint32(need))])
	}
	ch := &Chain{
		Principal: ix.principalName(b.Principal),
		Role:      b.Role.String(),
		On:        ix.entityPath(b.On),
		Public:    b.Principal == AllUsers || b.Principal == AllAuthenticatedUsers,
	}
	for _, r := range through {
		ch.Through = append(ch.Through, r.String())
	}
	return ch
}

// inclusionPath finds, breadth first over the declared inclusions, the
// shortest path from a bound role to the role a requirement names. A role
// that gives the capability directly (the owner, or a role reaching the
// requirement by another name) is its own path.
func inclusionPath(from, to Role) []Role {
	prev := map[Role]Role{from: RoleNone}
	queue := []Role{from}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if r == to {
			var path []Role
			for ; r != RoleNone; r = prev[r] {
				path = append(path, r)
			}
			slices.Reverse(path)
			return path
		}
		for _, inc := range roleCatalog[r].includes {
			if _, seen := prev[inc]; !seen {
				prev[inc] = r
				queue = append(queue, inc)
			}
		}
	}
	return []Role{from}
}

func (ix *Index) principalName(id ID) string {
	if p := ix.principals[id]; p != nil && id != Anonymous {
		return p.Name
	}
	if id == Anonymous {
		return "anonymous"
	}
	return fmt.Sprintf("anonymous (unregistered id %d)", id)
}

func (ix *Index) entityPath(id ID) string {
	if n := ix.nodes[id]; n != nil {
		return n.path()
	}
	return fmt.Sprintf("entity %d (does not exist)", id)
}

// path joins the names from the organization down; System is "system".
func (n *node) path() string {
	if n.parent == nil {
		return n.name
	}
	var names []string
	for ; n.parent != nil; n = n.parent {
		names = append(names, n.name)
	}
	slices.Reverse(names)
	return strings.Join(names, "/")
}

// String renders the explanation for people, one fact a line.
func (e Explanation) String() string {
	var b strings.Builder
	verdict := "denied"
	if e.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(&b, "%s: %s %s on %s", verdict, e.Principal, e.Action, e.Target)
	if e.Via != "" {
		fmt.Fprintf(&b, " via %s", e.Via)
	}
	if e.Role != "" {
		fmt.Fprintf(&b, " (role %s)", e.Role)
	}
	fmt.Fprintf(&b, "\nrule: %s\n", e.Rule)
	if e.Missing != "" {
		fmt.Fprintf(&b, "missing: %s\n", e.Missing)
	}
	for _, r := range e.Requirements {
		mark := "[missing]"
		if r.Satisfied {
			mark = "[ok]"
		}
		fmt.Fprintf(&b, "  %-9s %s on %s\n", mark, r.Need, r.On)
		if g := r.Grant; g != nil {
			fmt.Fprintf(&b, "            bound: %s has %s on %s", g.Principal, g.Role, g.On)
			if g.Public {
				b.WriteString(" (public access)")
			}
			b.WriteByte('\n')
			if len(g.Through) > 1 {
				fmt.Fprintf(&b, "            through: %s\n", strings.Join(g.Through, " → "))
			}
		}
		if r.Missing != "" {
			fmt.Fprintf(&b, "            missing: %s\n", r.Missing)
		}
	}
	return b.String()
}
