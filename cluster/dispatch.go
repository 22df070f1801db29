package cluster

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sphere-sandbox/sphere/policy"
)

// Apply is the stateless dispatcher: it decodes one command and applies it
// to s. It is separate from the Raft wiring so tests can drive it directly.
//
// Authorization happens here, at apply time, against the policy index as it
// stands at this log position: every node reaches the same verdict, and a
// revocation committed just before a write can never be raced past.
//
// A command that cannot be decoded panics: skipping it on one node and not
// another would make the replicas diverge.
//
// A command whose request was already applied is not applied again: it
// answers with the first outcome (requests.go).
func Apply(s *State, c *Command) Response {
	if c.Version != CommandVersion {
		panic(fmt.Sprintf("cluster: command version %d, this build understands %d", c.Version, CommandVersion))
	}
	h, ok := handlers[c.Type]
	if !ok {
		panic(fmt.Sprintf("cluster: unknown command type %q", c.Type))
	}
	if r, seen := s.requests.outcome(c); seen {
		return r
	}
	r := Response{}
	id, err := h(s, c)
	if err != nil {
		r = Response{Code: CodeOf(err), Msg: err.Error()}
	} else {
		r.ID = id
	}
	s.requests.record(c, r)
	return r
}

type handler func(s *State, c *Command) (policy.ID, error)

// handlers maps each command type to its handler; dataset.go adds its own.
var handlers = map[CommandType]handler{
	CmdNoop:         func(*State, *Command) (policy.ID, error) { return 0, nil },
	CmdBootstrap:    applyBootstrap,
	CmdAddUser:      applyAddUser,
	CmdRemoveUser:   applyRemoveUser,
	CmdSetUserToken: applySetUserToken,
	CmdSetUser:      applySetUser,
	CmdCreate:       applyCreate,
	CmdUpdate:       applyUpdate,
	CmdDelete:       applyDelete,
	CmdGrant:        applyGrant,
	CmdRevoke:       applyRevoke,
	CmdPublish:      applyPublish,
	CmdUnpublish:    applyUnpublish,
}

func decode[T any](c *Command) T {
	var v T
	if err := json.Unmarshal(c.Payload, &v); err != nil {
		panic(fmt.Sprintf("cluster: undecodable %s payload: %v", c.Type, err))
	}
	return v
}

// authorize asks policy whether the command's actor may act on target.
func authorize(s *State, c *Command, a policy.Action, t policy.Target) error {
	d := s.index.Decide(c.Actor, a, t)
	if d.Allowed {
		return nil
	}
	return Errorf(CodeDenied, "permission denied: %s on %s needs %s", a, s.describe(t.ID), d.Missing)
}

func (s *State) describe(id policy.ID) string {
	if id == policy.System {
		return "the system"
	}
	e, ok := s.Entities[id]
	if !ok {
		return "an unknown entity"
	}
	return kindName(e) + " " + s.Path(id)
}

func kindName(e *Entity) string {
	switch e.Kind {
	case policy.KindOrg:
		return "org"
	case policy.KindCommunity:
		return "community"
	case policy.KindProject:
		return "project"
	case policy.KindResource:
		return e.Type
	case policy.KindCloud:
		return "cloud"
	case policy.KindFolder:
		return "folder"
	case policy.KindServiceAccount:
		return "service-account"
	}
	return "entity"
}

func applyBootstrap(s *State, c *Command) (policy.ID, error) {
	p := decode[Bootstrap](c)
	if c.Actor != policy.Bootstrap {
		return 0, Errorf(CodeDenied, "permission denied: only the bootstrap administrator sets the master key check")
	}
	if s.KeyCheck != nil {
		return 0, Errorf(CodeConflict, "the master key check is already set")
	}
	s.KeyCheck = p.KeyCheck
	return 0, nil
}

func applyAddUser(s *State, c *Command) (policy.ID, error) {
	p := decode[AddUser](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	if err := ValidateName(p.Name); err != nil {
		return 0, err
	}
	if p.Name == "root" {
		return 0, Errorf(CodeInvalid, "invalid user: \"root\" is uid 0, the bootstrap administrator")
	}
	if _, taken := s.byName[p.Name]; taken {
		return 0, Errorf(CodeExists, "user %q already exists", p.Name)
	}
	if err := uidFree(s, p.UID); err != nil {
		return 0, err
	}
	u := &User{ID: s.NextID, Name: p.Name, UID: p.UID, Description: p.Description, Created: c.Time}
	if err := s.index.PutPrincipal(policy.Principal{ID: u.ID, Kind: policy.PrincipalUser, Name: u.Name}); err != nil {
		return 0, err
	}
	s.NextID++
	s.Users[u.ID] = u
	s.byName[u.Name] = u.ID
	s.byUID[u.UID] = u.ID
	return u.ID, nil
}

// uidFree checks uid can be given to a user: one uid is one person on a
// host, and uid 0 is root, the bootstrap administrator.
func uidFree(s *State, uid uint32) error {
	if uid == 0 {
		return Errorf(CodeInvalid, "invalid user: uid 0 is the bootstrap administrator \"root\"")
	}
	if id, taken := s.byUID[uid]; taken {
		return Errorf(CodeExists, "uid %d is already registered as user %q", uid, s.PrincipalName(id))
	}
	return nil
}

func userNamed(s *State, name string) (policy.ID, *User, error) {
	id, ok := s.byName[name]
	u := s.Users[id]
	if !ok || u == nil {
		return 0, nil, Errorf(CodeNotFound, "user %q not found", name)
	}
	return id, u, nil
}

// applySetUser changes a user's uid or description. A new uid takes effect
// on the next operation: every decision maps the caller's uid afresh.
func applySetUser(s *State, c *Command) (policy.ID, error) {
	p := decode[SetUser](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	id, u, err := userNamed(s, p.Name)
	if err != nil {
		return 0, err
	}
	if p.UID != nil && *p.UID != u.UID {
		if err := uidFree(s, *p.UID); err != nil {
			return 0, err
		}
		delete(s.byUID, u.UID)
		u.UID = *p.UID
		s.byUID[u.UID] = id
	}
	if p.Description != nil {
		u.Description = *p.Description
	}
	return id, nil
}

func applyRemoveUser(s *State, c *Command) (policy.ID, error) {
	p := decode[RemoveUser](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	id, u, err := userNamed(s, p.Name)
	if err != nil {
		return 0, err
	}
	if err := s.index.RemovePrincipal(id); err != nil {
		return 0, Errorf(CodeConflict, "cannot remove user %q: %v", p.Name, err)
	}
	delete(s.Users, id)
	delete(s.byName, u.Name)
	delete(s.byUID, u.UID)
	return id, nil
}

func applySetUserToken(s *State, c *Command) (policy.ID, error) {
	p := decode[SetUserToken](c)
	id, u, err := userNamed(s, p.Name)
	if err != nil {
		return 0, err
	}
	// A user may set their own token; anyone else needs to manage users.
	if c.Actor != id {
		if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
			return 0, err
		}
	}
	u.TokenHash = p.Hash
	return id, nil
}

// createAction is the action creating a child of each kind needs, on its parent.
var createAction = map[policy.Kind]policy.Action{
	policy.KindOrg:            policy.ActCreateOrg,
	policy.KindCommunity:      policy.ActCreateCommunity,
	policy.KindProject:        policy.ActCreateProject,
	policy.KindResource:       policy.ActCreateResource,
	policy.KindCloud:          policy.ActCreateCloud,
	policy.KindFolder:         policy.ActCreateFolder,
	policy.KindServiceAccount: policy.ActEditCloudEntity,
	policy.KindFolderResource: policy.ActEditCloudEntity,
}

// creatorRole is the role the creator of an entity receives on it.
var creatorRole = map[policy.Kind]string{
	policy.KindOrg:       "admin",
	policy.KindCommunity: "datasphere.communities.admin",
	policy.KindProject:   "datasphere.community-projects.admin",
	policy.KindCloud:     "resource-manager.clouds.owner",
}

func applyCreate(s *State, c *Command) (policy.ID, error) {
	p := decode[Create](c)
	validate := ValidateName
	if p.Kind == policy.KindResource && p.Type == TypeSecret {
		validate = ValidateSecretName
	}
	if err := validate(p.Name); err != nil {
		return 0, err
	}
	parent := p.Parent
	if _, ok := s.Entities[parent]; !ok && parent != policy.System {
		return 0, Errorf(CodeNotFound, "parent not found")
	}
	if existing, ok := s.Child(parent, p.Kind, p.Type, p.Name); ok {
		if p.Replace && p.Kind == policy.KindResource && p.Type == TypeSecret {
			if err := authorize(s, c, policy.ActEditResource, policy.Target{ID: existing.ID}); err != nil {
				return 0, err
			}
			existing.Sealed, existing.SecretLen, existing.Modified = p.Sealed, p.SecretLen, c.Time
			return existing.ID, nil
		}
		return 0, Errorf(CodeExists, "%s %q already exists in %s", kindName(&Entity{Kind: p.Kind, Type: p.Type}), p.Name, s.describe(parent))
	}
	action, ok := createAction[p.Kind]
	if !ok {
		return 0, Errorf(CodeInvalid, "entities of kind %d cannot be created", p.Kind)
	}
	if err := authorize(s, c, action, policy.Target{ID: parent}); err != nil {
		return 0, err
	}
	e := &Entity{
		ID: s.NextID, Kind: p.Kind, Type: p.Type, Name: p.Name, Parent: parent,
		Description: p.Description, Creator: c.Actor, Created: c.Time, Modified: c.Time,
		Settings: p.Settings, Sealed: p.Sealed, SecretLen: p.SecretLen, DataKey: p.DataKey,
	}
	if p.Kind == policy.KindResource {
		if err := s.CheckCountLimit(s.Entities[parent], p.Type); err != nil {
			return 0, err
		}
		if err := s.setSpec(e, p.Spec); err != nil {
			return 0, err
		}
	}
	if err := s.index.PutEntity(policyEntity(e)); err != nil {
		return 0, Errorf(CodeInvalid, "%v", err)
	}
	if e.Kind == policy.KindServiceAccount {
		mustPolicy(s.index.PutPrincipal(policy.Principal{ID: e.ID, Kind: policy.PrincipalServiceAccount, Name: e.Name}))
	}
	s.NextID++
	s.Entities[e.ID] = e
	s.link(e)
	if role, ok := creatorRole[e.Kind]; ok && c.Actor != policy.Anonymous {
		r, err := policy.ParseRole(role)
		mustPolicy(err)
		if err := s.index.Grant(policy.Binding{Principal: c.Actor, Role: r, On: e.ID}); err != nil {
			return 0, Errorf(CodeInternal, "grant creator role: %v", err)
		}
	}
	return e.ID, nil
}

// editAction is what changing an entity's settings needs.
var editAction = map[policy.Kind]policy.Action{
	policy.KindOrg:            policy.ActEditOrg,
	policy.KindCommunity:      policy.ActEditCommunity,
	policy.KindProject:        policy.ActEditProject,
	policy.KindResource:       policy.ActEditResource,
	policy.KindCloud:          policy.ActEditCloudEntity,
	policy.KindFolder:         policy.ActEditCloudEntity,
	policy.KindServiceAccount: policy.ActEditCloudEntity,
	policy.KindFolderResource: policy.ActEditCloudEntity,
}

// SettingBillingAccount is the community setting that binds a billing account.
const SettingBillingAccount = "billing-account"

func applyUpdate(s *State, c *Command) (policy.ID, error) {
	p := decode[Update](c)
	e, ok := s.Entities[p.ID]
	if !ok {
		return 0, Errorf(CodeNotFound, "entity not found")
	}
	action := editAction[e.Kind]
	_, billing := p.Settings[SettingBillingAccount]
	if e.Kind == policy.KindCommunity && billing {
		action = policy.ActBindBilling
	}
	if err := authorize(s, c, action, policy.Target{ID: e.ID}); err != nil {
		return 0, err
	}
	if p.Spec != nil {
		if err := s.setSpec(e, p.Spec); err != nil {
			return 0, err
		}
	}
	if p.Description != nil {
		e.Description = *p.Description
	}
	if len(p.Settings) > 0 && e.Settings == nil {
		e.Settings = map[string]string{}
	}
	for k, v := range p.Settings {
		e.Settings[k] = v
	}
	for _, k := range p.Unset {
		delete(e.Settings, k)
	}
	e.Modified = c.Time
	return e.ID, nil
}

var deleteAction = map[policy.Kind]policy.Action{
	policy.KindOrg:            policy.ActEditOrg,
	policy.KindCommunity:      policy.ActDeleteCommunity,
	policy.KindProject:        policy.ActDeleteProject,
	policy.KindResource:       policy.ActDeleteResource,
	policy.KindCloud:          policy.ActDeleteCloudEntity,
	policy.KindFolder:         policy.ActDeleteCloudEntity,
	policy.KindServiceAccount: policy.ActDeleteCloudEntity,
	policy.KindFolderResource: policy.ActDeleteCloudEntity,
}

func applyDelete(s *State, c *Command) (policy.ID, error) {
	p := decode[Delete](c)
	e, ok := s.Entities[p.ID]
	if !ok {
		return 0, Errorf(CodeNotFound, "entity not found")
	}
	if err := authorize(s, c, deleteAction[e.Kind], policy.Target{ID: e.ID}); err != nil {
		return 0, err
	}
	if e.Kind == policy.KindResource {
		if by, ok := s.referrerOf(e); ok {
			return 0, Errorf(CodeConflict, "cannot delete %s: %s %q refers to it; change or delete that first", s.describe(e.ID), by.Type, by.Name)
		}
	}
	// A project takes its resources with it; anything larger must be emptied
	// first, so one command never silently deletes whole teams' work.
	children := s.allChildren(e.ID)
	if len(children) > 0 && e.Kind != policy.KindProject {
		return 0, Errorf(CodeConflict, "cannot delete %s: it still holds %s %q; delete that first", s.describe(e.ID), kindName(children[0]), children[0].Name)
	}
	// Resources hold no bindings that could keep them, so removing them
	// cannot fail; the entity itself may still be refused (a service
	// account that is a cloud's last owner), before anything changed.
	for _, child := range children {
		mustPolicy(s.index.RemoveEntity(child.ID))
		s.forget(child)
	}
	if err := s.index.RemoveEntity(e.ID); err != nil {
		return 0, policyError(err)
	}
	s.forget(e)
	return e.ID, nil
}

// forget drops an entity the policy index has already removed.
func (s *State) forget(e *Entity) {
	for _, f := range s.Datasets[e.ID] {
		s.countChunks(f.Chunks, -1)
	}
	delete(s.Datasets, e.ID)
	delete(s.datasetIndexes, e.ID)
	s.unlink(e)
	delete(s.Entities, e.ID)
}

func (s *State) binding(b BindingRecord) (policy.Binding, error) {
	role, err := policy.ParseRole(b.Role)
	if err != nil {
		return policy.Binding{}, Errorf(CodeInvalid, "%v", err)
	}
	if _, ok := s.Entities[b.On]; !ok && b.On != policy.System {
		return policy.Binding{}, Errorf(CodeNotFound, "entity not found")
	}
	return policy.Binding{Principal: b.Principal, Role: role, On: b.On}, nil
}

func applyGrant(s *State, c *Command) (policy.ID, error) {
	b, err := s.binding(decode[BindingRecord](c))
	if err != nil {
		return 0, err
	}
	if err := authorize(s, c, policy.ActGrant, policy.Target{ID: b.On, Role: b.Role}); err != nil {
		return 0, err
	}
	if err := s.index.Grant(b); err != nil {
		return 0, policyError(err)
	}
	return b.On, nil
}

func applyRevoke(s *State, c *Command) (policy.ID, error) {
	b, err := s.binding(decode[BindingRecord](c))
	if err != nil {
		return 0, err
	}
	if err := authorize(s, c, policy.ActRevoke, policy.Target{ID: b.On, Role: b.Role}); err != nil {
		return 0, err
	}
	if b.Principal == policy.Bootstrap && b.On == policy.System && b.Role == policy.RoleAdmin {
		return 0, Errorf(CodeConflict, "cannot revoke root's %s on the system: uid 0 is the bootstrap administrator, and without it nobody could manage users or create organizations", b.Role)
	}
	if err := s.index.Revoke(b); err != nil {
		return 0, policyError(err)
	}
	return b.On, nil
}

func applyPublish(s *State, c *Command) (policy.ID, error) {
	p := decode[Publish](c)
	// Others read a published dataset (or model) as it is; it must not
	// change under them.
	if e, ok := s.Entities[p.Resource]; ok && HoldsFiles(e.Type) && e.Settings[SettingState] != StateSealed {
		return 0, Errorf(CodeConflict, "%s %s is still initializing; seal it before publishing it", e.Type, s.Path(e.ID))
	}
	return publish(s, c, policy.ActPublishResource, s.index.Publish)
}

func applyUnpublish(s *State, c *Command) (policy.ID, error) {
	return publish(s, c, policy.ActUnpublishResource, s.index.Unpublish)
}

func publish(s *State, c *Command, a policy.Action, change func(resource, community policy.ID) error) (policy.ID, error) {
	p := decode[Publish](c)
	if err := authorize(s, c, a, policy.Target{ID: p.Resource, Via: p.Community}); err != nil {
		return 0, err
	}
	if err := change(p.Resource, p.Community); err != nil {
		return 0, policyError(err)
	}
	return p.Resource, nil
}

// policyError classifies the policy index's refusals.
func policyError(err error) error {
	switch {
	case errors.Is(err, policy.ErrNoSuchEntity), errors.Is(err, policy.ErrNoSuchPrincipal), errors.Is(err, policy.ErrNoSuchBinding):
		return Errorf(CodeNotFound, "%v", err)
	case errors.Is(err, policy.ErrLastOwner):
		return Errorf(CodeConflict, "%v", err)
	default:
		return Errorf(CodeInvalid, "%v", err)
	}
}
