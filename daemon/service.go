package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
)

// routes maps every API method to its handler. Reads are decided here, on
// this node's state; writes are decided by the state machine when they apply
// (cluster.Apply), after the daemon has checked the caller may see what they
// name, so a refusal never reveals what the caller may not see.
func (d *Daemon) routes() map[string]handlerFunc {
	return map[string]handlerFunc{
		api.MWhoAmI:        method(d.whoami),
		api.MUserAdd:       method(d.userAdd),
		api.MUserList:      method(d.userList),
		api.MUserShow:      method(d.userShow),
		api.MUserRemove:    method(d.userRemove),
		api.MUserToken:     method(d.userToken),
		api.MUserSet:       method(d.userSet),
		api.MCreate:        method(d.create),
		api.MList:          method(d.list),
		api.MShow:          method(d.show),
		api.MSet:           method(d.set),
		api.MDelete:        method(d.delete),
		api.MRoleGrant:     method(d.grant),
		api.MRoleRevoke:    method(d.revoke),
		api.MRoleList:      method(d.roleList),
		api.MShare:         method(d.share),
		api.MUnshare:       method(d.unshare),
		api.MAccessCheck:   method(d.accessCheck),
		api.MSecretPut:     method(d.secretPut),
		api.MSecretEnv:     method(d.secretEnv),
		api.MDatasetCreate: method(d.datasetCreate),
		api.MDatasetSeal:   method(d.datasetSeal),
		api.MS3Create:      method(d.s3Create),
		api.MS3Activate:    method(d.s3Activate),
		api.MMount:         method(d.mount),
		api.MUmount:        method(d.umount),
		api.MMountList:     method(d.mountList),
		api.MSnapshot:      method(d.snapshot),
	}
}

func (d *Daemon) decide(p policy.ID, a policy.Action, t policy.Target) policy.Decision {
	return d.node.FSM().Index().Decide(p, a, t)
}

// viewAction is what seeing an entity of each kind needs.
var viewAction = map[policy.Kind]policy.Action{
	policy.KindOrg:            policy.ActViewOrg,
	policy.KindCommunity:      policy.ActViewCommunity,
	policy.KindProject:        policy.ActViewProject,
	policy.KindResource:       policy.ActViewResource,
	policy.KindCloud:          policy.ActViewCloudEntity,
	policy.KindFolder:         policy.ActViewCloudEntity,
	policy.KindServiceAccount: policy.ActViewCloudEntity,
	policy.KindFolderResource: policy.ActViewCloudEntity,
}

func (d *Daemon) mayView(s *cluster.State, p policy.ID, e *cluster.Entity) bool {
	return d.decide(p, viewAction[e.Kind], policy.Target{ID: e.ID}).Allowed
}

// resolve finds what a reference names, as the caller may see it: what they
// may not view is "not found", exactly like what does not exist.
func (d *Daemon) resolve(s *cluster.State, c caller, ref string) (*cluster.Entity, error) {
	r, err := cluster.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return d.resolveRef(s, c, r)
}

func (d *Daemon) resolveRef(s *cluster.State, c caller, r cluster.Ref) (*cluster.Entity, error) {
	if r.Kind == cluster.RefSystem {
		return nil, cluster.Errorf(cluster.CodeInvalid, "invalid reference: the system is not an entity you can name here")
	}
	e, err := s.Resolve(r)
	if err == nil && !d.mayView(s, c.Principal, e) {
		err = cluster.Errorf(cluster.CodeNotFound, "%s not found", r)
	}
	return e, err
}

func (d *Daemon) whoami(_ context.Context, c caller, _ struct{}) (any, error) {
	w := api.WhoAmI{UID: c.UID, Principal: c.Name, Registered: c.Principal != policy.Anonymous, Groups: []string{"allUsers"}}
	if w.Registered {
		w.Groups = append(w.Groups, "allAuthenticatedUsers")
	}
	return w, nil
}

func (d *Daemon) userAdd(ctx context.Context, c caller, req api.UserAddReq) (any, error) {
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	_, err := d.propose(ctx, c, cluster.CmdAddUser, cluster.AddUser{Name: req.Name, UID: req.UID, Description: req.Description})
	if err != nil {
		return nil, err
	}
	return d.userShow(ctx, c, api.NameReq{Name: req.Name})
}

func (d *Daemon) userSet(ctx context.Context, c caller, req api.UserSetReq) (any, error) {
	if req.UID == nil && req.Description == nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "nothing to change: give a new uid or description")
	}
	if req.Description != nil {
		if err := checkDescription(*req.Description); err != nil {
			return nil, err
		}
	}
	if _, err := d.propose(ctx, c, cluster.CmdSetUser, cluster.SetUser{Name: req.Name, UID: req.UID, Description: req.Description}); err != nil {
		return nil, err
	}
	return d.userShow(ctx, c, api.NameReq{Name: req.Name})
}

func (d *Daemon) userList(_ context.Context, c caller, _ struct{}) (any, error) {
	if !d.decide(c.Principal, policy.ActListUsers, policy.Target{ID: policy.System}).Allowed {
		return nil, cluster.Errorf(cluster.CodeDenied, "permission denied: listing users needs viewer on the system")
	}
	var out []api.User
	d.node.FSM().Read(func(s *cluster.State) {
		for _, u := range s.Users {
			out = append(out, userView(u))
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func userView(u *cluster.User) api.User {
	return api.User{ID: uint64(u.ID), Name: u.Name, UID: u.UID, Description: u.Description, Created: u.Created, HasToken: u.TokenHash != nil}
}

func (d *Daemon) userShow(_ context.Context, c caller, req api.NameReq) (any, error) {
	var out api.User
	var found bool
	d.node.FSM().Read(func(s *cluster.State) {
		id, ok := s.UserByName(req.Name)
		u := s.Users[id]
		// People may see themselves; others need to be able to list users.
		if ok && u != nil && (id == c.Principal || d.decide(c.Principal, policy.ActListUsers, policy.Target{ID: policy.System}).Allowed) {
			out, found = userView(u), true
		}
	})
	if !found {
		return nil, cluster.Errorf(cluster.CodeNotFound, "user %q not found", req.Name)
	}
	return out, nil
}

func (d *Daemon) userRemove(ctx context.Context, c caller, req api.NameReq) (any, error) {
	_, err := d.propose(ctx, c, cluster.CmdRemoveUser, cluster.RemoveUser{Name: req.Name})
	return nil, err
}

// userToken issues a new API token; only its hash is stored.
func (d *Daemon) userToken(ctx context.Context, c caller, req api.NameReq) (any, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	token := "sph_" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	if _, err := d.propose(ctx, c, cluster.CmdSetUserToken, cluster.SetUserToken{Name: req.Name, Hash: sum[:]}); err != nil {
		return nil, err
	}
	return api.TokenReply{Token: token}, nil
}

// refEntityKind is the entity kind each reference kind creates.
var refEntityKind = map[cluster.RefKind]policy.Kind{
	cluster.RefOrg:            policy.KindOrg,
	cluster.RefCommunity:      policy.KindCommunity,
	cluster.RefProject:        policy.KindProject,
	cluster.RefCloud:          policy.KindCloud,
	cluster.RefFolder:         policy.KindFolder,
	cluster.RefServiceAccount: policy.KindServiceAccount,
}

// settingsOf is which settings each kind accepts, and how each is checked.
var settingsOf = map[policy.Kind]map[string]func(string) error{
	policy.KindCommunity: {cluster.SettingBillingAccount: validateBillingAccount},
	policy.KindProject:   limitSettings(),
}

// limitSettings are a project's limits (cluster/limits.go): counts, and
// bytes for storage, as non-negative integers.
func limitSettings() map[string]func(string) error {
	m := map[string]func(string) error{}
	for _, key := range cluster.LimitKeys {
		m[cluster.LimitPrefix+key] = func(v string) error {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return cluster.Errorf(cluster.CodeInvalid, "invalid limit %s=%q: a whole number, 0 or more", key, v)
			}
			return nil
		}
	}
	return m
}

func validateBillingAccount(v string) error {
	if err := cluster.ValidateName(v); err != nil {
		return cluster.Errorf(cluster.CodeInvalid, "invalid billing account id: %v", err)
	}
	return nil
}

// settingsOfType is which settings a resource of each type accepts: the
// others are set by commands of their own (seal, activate) or not at all.
var settingsOfType = map[string]map[string]func(string) error{
	cluster.TypeDataset: {cluster.SettingSizeLimit: validateSizeLimit},
	cluster.TypeS3:      {s3Mode: validateS3Mode},
}

func validateSizeLimit(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
		return cluster.Errorf(cluster.CodeInvalid, "invalid size limit %q: a whole number of bytes, 1 or more", v)
	}
	return nil
}

func checkSettings(k policy.Kind, typ string, settings map[string]string, unset []string) error {
	allowed := settingsOf[k]
	if k == policy.KindResource {
		allowed = settingsOfType[typ]
	}
	for key, v := range settings {
		check, ok := allowed[key]
		if !ok {
			return cluster.Errorf(cluster.CodeInvalid, "unknown setting %q for this kind (known: %s)", key, strings.Join(keys(allowed), ", "))
		}
		if err := check(v); err != nil {
			return err
		}
	}
	for _, key := range unset {
		if _, ok := allowed[key]; !ok {
			return cluster.Errorf(cluster.CodeInvalid, "unknown setting %q for this kind", key)
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maxDescription bounds descriptions: they are replicated to every node.
const maxDescription = 1024

func checkDescription(description string) error {
	if len(description) > maxDescription {
		return cluster.Errorf(cluster.CodeInvalid, "description is %d bytes; the limit is %d", len(description), maxDescription)
	}
	return nil
}

func (d *Daemon) create(ctx context.Context, c caller, req api.CreateReq) (any, error) {
	r, err := cluster.ParseRef(req.Ref)
	if err != nil {
		return nil, err
	}
	kind, ok := refEntityKind[r.Kind]
	typ := ""
	if r.Kind == cluster.RefResource {
		// Resources with a descriptor; the others have commands of their own.
		kind, typ = policy.KindResource, cluster.ResourceTypes[r.Path[3]]
		if !cluster.HasSpec(typ) {
			return nil, cluster.Errorf(cluster.CodeInvalid, "a %s is created with `sphere %s create`", typ, typ)
		}
		if _, err := cluster.DecodeSpec(typ, nil, req.Spec); err != nil {
			return nil, err
		}
	} else if !ok {
		return nil, cluster.Errorf(cluster.CodeInvalid, "%s entities are not created with this command", r.Kind)
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	if err := checkSettings(kind, typ, req.Settings, nil); err != nil {
		return nil, err
	}
	cmd := cluster.Create{Kind: kind, Type: typ, Name: r.Path[len(r.Path)-1], Description: req.Description, Settings: req.Settings,
		Parent: policy.System, Spec: req.Spec}
	if typ == cluster.TypeModel {
		// A model's files are uploaded next, then it is sealed.
		cmd.Settings = map[string]string{cluster.SettingState: cluster.StateInitializing}
	}
	if len(r.Path) > 1 {
		parentRef := cluster.Ref{Kind: parentRefKind[r.Kind], Path: r.Path[:len(r.Path)-1]}
		if r.Kind == cluster.RefResource { // ORG/C/P of ORG/C/P/FOLDER/NAME
			parentRef.Path = r.Path[:3]
		}
		var perr error
		d.node.FSM().Read(func(s *cluster.State) {
			var p *cluster.Entity
			if p, perr = d.resolveRef(s, c, parentRef); perr == nil {
				cmd.Parent = p.ID
			}
		})
		if perr != nil {
			return nil, perr
		}
	}
	if kind == policy.KindProject {
		if cmd.DataKey, err = d.master.NewDataKey(strings.Join(r.Path, "/")); err != nil {
			return nil, err
		}
	}
	id, err := d.propose(ctx, c, cluster.CmdCreate, cmd)
	if err != nil {
		return nil, err
	}
	return d.entityByID(c, id)
}

var parentRefKind = map[cluster.RefKind]cluster.RefKind{
	cluster.RefCommunity:      cluster.RefOrg,
	cluster.RefProject:        cluster.RefCommunity,
	cluster.RefResource:       cluster.RefProject,
	cluster.RefCloud:          cluster.RefOrg,
	cluster.RefFolder:         cluster.RefCloud,
	cluster.RefServiceAccount: cluster.RefFolder,
}

func (d *Daemon) entityByID(c caller, id policy.ID) (api.Entity, error) {
	var out api.Entity
	var found bool
	d.node.FSM().Read(func(s *cluster.State) {
		if e, ok := s.Entities[id]; ok {
			out, found = d.view(s, c, e, true), true
		}
	})
	if !found {
		return out, cluster.Errorf(cluster.CodeNotFound, "not found")
	}
	return out, nil
}

var kindNames = map[policy.Kind]string{
	policy.KindOrg: "org", policy.KindCommunity: "community", policy.KindProject: "project",
	policy.KindResource: "resource", policy.KindCloud: "cloud", policy.KindFolder: "folder",
	policy.KindServiceAccount: "service-account", policy.KindFolderResource: "folder-resource",
}

// view renders an entity for a caller who may see it.
func (d *Daemon) view(s *cluster.State, c caller, e *cluster.Entity, detail bool) api.Entity {
	v := api.Entity{
		ID: uint64(e.ID), Kind: kindNames[e.Kind], Type: e.Type, Name: e.Name, Path: s.Path(e.ID),
		Description: e.Description, Creator: s.PrincipalName(e.Creator), Created: e.Created, Modified: e.Modified,
		Settings: e.Settings, Spec: e.Spec,
	}
	switch {
	case e.Type == cluster.TypeSecret:
		v.Size = int64(e.SecretLen)
	case cluster.HoldsFiles(e.Type):
		v.Size, v.Files = s.DatasetUsage(e.ID)
	}
	if !detail {
		return v
	}
	if e.Kind == policy.KindProject {
		v.Limits = limitUses(s, e)
	}
	ix := s.Index()
	for _, comm := range ix.Publications(e.ID) {
		v.PublishedTo = append(v.PublishedTo, s.Path(comm))
	}
	if d.decide(c.Principal, policy.ActViewAccess, policy.Target{ID: e.ID}).Allowed {
		v.Members = d.bindingViews(s, ix.Bindings(e.ID))
	}
	return v
}

// limitUses is every limit of project, set or not, with what it uses.
func limitUses(s *cluster.State, project *cluster.Entity) []api.LimitUse {
	out := make([]api.LimitUse, 0, len(cluster.LimitKeys))
	for _, key := range cluster.LimitKeys {
		u := api.LimitUse{Name: key, Used: s.Usage(project.ID, key)}
		if n, ok := cluster.LimitOf(project, key); ok {
			u.Limit = &n
		}
		out = append(out, u)
	}
	return out
}

func (d *Daemon) bindingViews(s *cluster.State, bs []policy.Binding) []api.Binding {
	out := make([]api.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, api.Binding{Principal: principalRef(s, b.Principal), Role: b.Role.String(), On: d.entityRef(s, b.On)})
	}
	return out
}

func principalRef(s *cluster.State, id policy.ID) string {
	switch id {
	case policy.AllUsers, policy.AllAuthenticatedUsers:
		return "group:" + s.PrincipalName(id)
	}
	if e, ok := s.Entities[id]; ok && e.Kind == policy.KindServiceAccount {
		return "service-account:" + s.Path(id)
	}
	return "user:" + s.PrincipalName(id)
}

func (d *Daemon) entityRef(s *cluster.State, id policy.ID) string {
	if id == policy.System {
		return "system"
	}
	e, ok := s.Entities[id]
	if !ok {
		return "unknown"
	}
	return kindNames[e.Kind] + ":" + s.Path(id)
}

// listKinds is what `list` accepts, with the kind of parent it lists under.
var listKinds = map[string]policy.Kind{
	"org": policy.KindOrg, "community": policy.KindCommunity, "project": policy.KindProject,
	"resource": policy.KindResource, "cloud": policy.KindCloud, "folder": policy.KindFolder,
	"service-account": policy.KindServiceAccount,
}

var listParent = map[policy.Kind]cluster.RefKind{
	policy.KindCommunity: cluster.RefOrg, policy.KindProject: cluster.RefCommunity,
	policy.KindResource: cluster.RefProject, policy.KindCloud: cluster.RefOrg,
	policy.KindFolder: cluster.RefCloud, policy.KindServiceAccount: cluster.RefFolder,
}

func (d *Daemon) list(_ context.Context, c caller, req api.ListReq) (any, error) {
	kind, ok := listKinds[req.Kind]
	if !ok {
		return nil, cluster.Errorf(cluster.CodeInvalid, "cannot list %q (one of org, community, project, resource, cloud, folder, service-account)", req.Kind)
	}
	out := []api.Entity{}
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		if req.Parent == "" {
			for _, e := range s.Entities {
				if e.Kind == kind && (req.Type == "" || e.Type == req.Type) && d.mayView(s, c.Principal, e) {
					out = append(out, d.view(s, c, e, false))
				}
			}
			return
		}
		var r cluster.Ref
		if r, err = cluster.ParsePath(listParent[kind], req.Parent); err != nil {
			return
		}
		var parent *cluster.Entity
		if parent, err = d.resolveRef(s, c, r); err != nil {
			return
		}
		for _, e := range s.Children(parent.ID, kind, req.Type) {
			if d.mayView(s, c.Principal, e) {
				out = append(out, d.view(s, c, e, false))
			}
		}
		if kind == policy.KindResource {
			out = append(out, d.publishedInto(s, c, parent, req.Type)...)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// publishedInto lists resources published to a project's community, as the
// caller may see them through that project.
func (d *Daemon) publishedInto(s *cluster.State, c caller, project *cluster.Entity, typ string) []api.Entity {
	var out []api.Entity
	for _, rid := range s.Index().PublishedTo(project.Parent) {
		r, ok := s.Entities[rid]
		if !ok || r.Parent == project.ID || (typ != "" && r.Type != typ) {
			continue
		}
		if d.decide(c.Principal, policy.ActViewResource, policy.Target{ID: rid, Via: project.ID}).Allowed {
			v := d.view(s, c, r, false)
			v.Owner = s.Path(r.Parent)
			out = append(out, v)
		}
	}
	return out
}

func (d *Daemon) show(_ context.Context, c caller, req api.RefReq) (any, error) {
	var out api.Entity
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var e *cluster.Entity
		if e, err = d.resolve(s, c, req.Ref); err == nil {
			out = d.view(s, c, e, true)
		}
	})
	return out, err
}

func (d *Daemon) set(ctx context.Context, c caller, req api.SetReq) (any, error) {
	if req.Description != nil {
		if err := checkDescription(*req.Description); err != nil {
			return nil, err
		}
	}
	e, err := d.lookup(c, req.Ref)
	if err != nil {
		return nil, err
	}
	if err := checkSettings(e.Kind, e.Type, req.Settings, req.Unset); err != nil {
		return nil, err
	}
	if req.Spec != nil {
		if _, err := cluster.DecodeSpec(e.Type, e.Spec, req.Spec); err != nil {
			return nil, err
		}
	}
	if req.Description == nil && len(req.Settings) == 0 && len(req.Unset) == 0 && req.Spec == nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "nothing to change: give --description or a setting")
	}
	if _, err := d.propose(ctx, c, cluster.CmdUpdate, cluster.Update{ID: e.ID, Description: req.Description, Settings: req.Settings, Unset: req.Unset, Spec: req.Spec}); err != nil {
		return nil, err
	}
	return d.entityByID(c, e.ID)
}

// lookup resolves a reference for a caller and returns a copy of the entity.
func (d *Daemon) lookup(c caller, ref string) (cluster.Entity, error) {
	var out cluster.Entity
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var e *cluster.Entity
		if e, err = d.resolve(s, c, ref); err == nil {
			out = *e
		}
	})
	return out, err
}

func (d *Daemon) delete(ctx context.Context, c caller, req api.RefReq) (any, error) {
	e, err := d.lookup(c, req.Ref)
	if err != nil {
		return nil, err
	}
	_, err = d.propose(ctx, c, cluster.CmdDelete, cluster.Delete{ID: e.ID})
	return nil, err
}

// principal parses user:NAME, service-account:ORG/CLOUD/F/NAME or
// group:allUsers|allAuthenticatedUsers (a bare NAME is a user).
func (d *Daemon) principal(s *cluster.State, c caller, ref string) (policy.ID, error) {
	kind, name, ok := strings.Cut(ref, ":")
	if !ok {
		kind, name = "user", ref
	}
	switch kind {
	case "user":
		if id, ok := s.UserByName(name); ok {
			return id, nil
		}
		return 0, cluster.Errorf(cluster.CodeNotFound, "user %q not found", name)
	case "group":
		switch name {
		case "allUsers":
			return policy.AllUsers, nil
		case "allAuthenticatedUsers":
			return policy.AllAuthenticatedUsers, nil
		}
		return 0, cluster.Errorf(cluster.CodeInvalid, "unknown group %q (allUsers or allAuthenticatedUsers)", name)
	case "service-account":
		e, err := d.resolve(s, c, ref)
		if err != nil {
			return 0, err
		}
		return e.ID, nil
	}
	return 0, cluster.Errorf(cluster.CodeInvalid, "invalid principal %q: use user:NAME, service-account:ORG/CLOUD/FOLDER/NAME or group:allUsers|allAuthenticatedUsers", ref)
}

func (d *Daemon) bindingCmd(c caller, req api.GrantReq) (cluster.BindingRecord, error) {
	var b cluster.BindingRecord
	if _, err := policy.ParseRole(req.Role); err != nil {
		return b, cluster.Errorf(cluster.CodeInvalid, "%v", err)
	}
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var e *cluster.Entity
		if e, err = d.resolve(s, c, req.On); err != nil {
			return
		}
		b = cluster.BindingRecord{Role: req.Role, On: e.ID}
		b.Principal, err = d.principal(s, c, req.Principal)
	})
	return b, err
}

func (d *Daemon) grant(ctx context.Context, c caller, req api.GrantReq) (any, error) {
	b, err := d.bindingCmd(c, req)
	if err != nil {
		return nil, err
	}
	_, err = d.propose(ctx, c, cluster.CmdGrant, b)
	return nil, err
}

func (d *Daemon) revoke(ctx context.Context, c caller, req api.GrantReq) (any, error) {
	b, err := d.bindingCmd(c, req)
	if err != nil {
		return nil, err
	}
	_, err = d.propose(ctx, c, cluster.CmdRevoke, b)
	return nil, err
}

func (d *Daemon) roleList(_ context.Context, c caller, req api.RefReq) (any, error) {
	var out []api.Binding
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		id := policy.System
		if req.Ref != "system" && req.Ref != "system:" {
			var e *cluster.Entity
			if e, err = d.resolve(s, c, req.Ref); err != nil {
				return
			}
			id = e.ID
		}
		if dec := d.decide(c.Principal, policy.ActViewAccess, policy.Target{ID: id}); !dec.Allowed {
			err = cluster.Errorf(cluster.CodeDenied, "permission denied: listing roles on %s needs %s", req.Ref, dec.Missing)
			return
		}
		out = d.bindingViews(s, s.Index().Bindings(id))
	})
	return out, err
}

func (d *Daemon) shareCmd(c caller, req api.ShareReq) (cluster.Publish, error) {
	var p cluster.Publish
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var r, comm *cluster.Entity
		if r, err = d.resolve(s, c, req.Resource); err != nil {
			return
		}
		if comm, err = d.resolve(s, c, "community:"+strings.TrimPrefix(req.Community, "community:")); err != nil {
			return
		}
		p = cluster.Publish{Resource: r.ID, Community: comm.ID}
	})
	return p, err
}

func (d *Daemon) share(ctx context.Context, c caller, req api.ShareReq) (any, error) {
	p, err := d.shareCmd(c, req)
	if err != nil {
		return nil, err
	}
	_, err = d.propose(ctx, c, cluster.CmdPublish, p)
	return nil, err
}

func (d *Daemon) unshare(ctx context.Context, c caller, req api.ShareReq) (any, error) {
	p, err := d.shareCmd(c, req)
	if err != nil {
		return nil, err
	}
	_, err = d.propose(ctx, c, cluster.CmdUnpublish, p)
	return nil, err
}

// accessCheck explains a decision. Asking about someone else reveals their
// rights, so it needs the right to view access on the target.
func (d *Daemon) accessCheck(_ context.Context, c caller, req api.CheckReq) (any, error) {
	action, err := policy.ParseAction(req.Action)
	if err != nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "%v", err)
	}
	var out policy.Explanation
	d.node.FSM().Read(func(s *cluster.State) {
		t := policy.Target{ID: policy.System}
		if req.Target != "system" && req.Target != "system:" {
			var e *cluster.Entity
			if e, err = d.resolve(s, c, req.Target); err != nil {
				return
			}
			t.ID = e.ID
		}
		if req.Via != "" {
			var v *cluster.Entity
			if v, err = d.resolve(s, c, req.Via); err != nil {
				return
			}
			t.Via = v.ID
		}
		if req.Role != "" {
			if t.Role, err = policy.ParseRole(req.Role); err != nil {
				err = cluster.Errorf(cluster.CodeInvalid, "%v", err)
				return
			}
		}
		who := c.Principal
		if req.As != "" {
			if who, err = d.principal(s, c, req.As); err != nil {
				return
			}
		}
		if who != c.Principal {
			if dec := d.decide(c.Principal, policy.ActViewAccess, policy.Target{ID: t.ID}); !dec.Allowed {
				err = cluster.Errorf(cluster.CodeDenied, "permission denied: checking another principal's access needs %s", dec.Missing)
				return
			}
		}
		out = s.Index().Explain(who, action, t)
	})
	return out, err
}

func (d *Daemon) snapshot(_ context.Context, c caller, _ struct{}) (any, error) {
	if dec := d.decide(c.Principal, policy.ActManageUsers, policy.Target{ID: policy.System}); !dec.Allowed {
		return nil, cluster.Errorf(cluster.CodeDenied, "permission denied: taking a snapshot needs %s", dec.Missing)
	}
	if err := d.node.Snapshot(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return d.node.Status(), nil
}
