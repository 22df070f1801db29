package cluster

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// harness drives the dispatcher directly, as every node's FSM would.
type harness struct {
	t *testing.T
	s *State
}

func newHarness(t *testing.T) *harness { return &harness{t: t, s: NewState()} }

func (h *harness) apply(actor policy.ID, typ CommandType, payload any) Response {
	h.t.Helper()
	c, err := NewCommand(typ, actor, payload)
	if err != nil {
		h.t.Fatal(err)
	}
	c.Time = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return Apply(h.s, c)
}

func (h *harness) must(actor policy.ID, typ CommandType, payload any) policy.ID {
	h.t.Helper()
	r := h.apply(actor, typ, payload)
	if err := r.Err(); err != nil {
		h.t.Fatalf("%s: %v", typ, err)
	}
	return r.ID
}

// restore encodes the state, decodes it into a new one and checks that
// encodes to the same bytes: snapshots are whole and canonical.
func (h *harness) restore() *State {
	h.t.Helper()
	data, err := h.s.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	restored := NewState()
	if err := restored.Decode(data); err != nil {
		h.t.Fatal(err)
	}
	if again, err := restored.Encode(); err != nil || !bytes.Equal(data, again) {
		h.t.Fatalf("snapshot did not round-trip (%v):\n%s\n%s", err, data, again)
	}
	return restored
}

// org builds acme/cats/p1 with a user alice, created by root.
func (h *harness) org() (org, comm, proj, alice policy.ID) {
	org = h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindOrg, Parent: policy.System, Name: "acme"})
	comm = h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindCommunity, Parent: org, Name: "cats"})
	proj = h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindProject, Parent: comm, Name: "p1", DataKey: []byte("wrapped")})
	alice = h.must(policy.Bootstrap, CmdAddUser, AddUser{Name: "alice", UID: 1001})
	return
}

func TestApplyCommands(t *testing.T) {
	tests := []struct {
		name    string
		actor   func(alice policy.ID) policy.ID
		typ     CommandType
		payload func(org, comm, proj, alice policy.ID) any
		code    ErrCode
		msg     string // a part of the error message
	}{
		{"root creates a second org", root, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindOrg, Parent: policy.System, Name: "globex"}
		}, "", ""},
		{"duplicate sibling name", root, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindCommunity, Parent: o, Name: "cats"}
		}, CodeExists, `"cats" already exists`},
		{"bad name changes nothing", root, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindCommunity, Parent: o, Name: "Bad/Name"}
		}, CodeInvalid, "lowercase"},
		{"alice may not create a community", aliceOf, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindCommunity, Parent: o, Name: "dogs"}
		}, CodeDenied, "permission denied"},
		{"alice may not create a secret without a role", aliceOf, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindResource, Type: TypeSecret, Parent: p, Name: "TOKEN", Sealed: []byte("x")}
		}, CodeDenied, "create-resource"},
		{"secret names follow the secret rule", root, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindResource, Type: TypeSecret, Parent: p, Name: "my-token"}
		}, CodeInvalid, "secret name"},
		{"a project under an org is refused", root, CmdCreate, func(o, c, p, a policy.ID) any {
			return Create{Kind: policy.KindProject, Parent: o, Name: "stray"}
		}, CodeDenied, ""},
		{"uid taken", root, CmdAddUser, func(o, c, p, a policy.ID) any { return AddUser{Name: "alicia", UID: 1001} }, CodeExists, "uid 1001"},
		{"uid 0 is root", root, CmdAddUser, func(o, c, p, a policy.ID) any { return AddUser{Name: "zero", UID: 0} }, CodeInvalid, "uid 0"},
		{"alice may not add users", aliceOf, CmdAddUser, func(o, c, p, a policy.ID) any { return AddUser{Name: "mallory", UID: 1666} }, CodeDenied, ""},
		{"a user moves to another uid", root, CmdSetUser, func(o, c, p, a policy.ID) any { return SetUser{Name: "alice", UID: new(uint32(1500))} }, "", ""},
		{"nobody moves to uid 0", root, CmdSetUser, func(o, c, p, a policy.ID) any { return SetUser{Name: "alice", UID: new(uint32(0))} }, CodeInvalid, "uid 0"},
		{"changing an unknown user", root, CmdSetUser, func(o, c, p, a policy.ID) any { return SetUser{Name: "bob", Description: new("x")} }, CodeNotFound, `"bob"`},
		{"alice may not change users", aliceOf, CmdSetUser, func(o, c, p, a policy.ID) any { return SetUser{Name: "alice", UID: new(uint32(1500))} }, CodeDenied, ""},
		{"unknown role", root, CmdGrant, func(o, c, p, a policy.ID) any {
			return BindingRecord{Principal: a, Role: "superuser", On: p}
		}, CodeInvalid, "superuser"},
		{"community with projects is not deleted", root, CmdDelete, func(o, c, p, a policy.ID) any { return Delete{ID: c} }, CodeConflict, "still holds project"},
		{"billing account needs editor", aliceOf, CmdUpdate, func(o, c, p, a policy.ID) any {
			return Update{ID: c, Settings: map[string]string{SettingBillingAccount: "ba1"}}
		}, CodeDenied, "bind-billing"},
		{"revoking a binding that is not there", root, CmdRevoke, func(o, c, p, a policy.ID) any {
			return BindingRecord{Principal: a, Role: "viewer", On: p}
		}, CodeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			org, comm, proj, alice := h.org()
			before, err := h.s.Encode()
			if err != nil {
				t.Fatal(err)
			}
			r := h.apply(tt.actor(alice), tt.typ, tt.payload(org, comm, proj, alice))
			if r.Code != tt.code || !strings.Contains(r.Msg, tt.msg) {
				t.Fatalf("got code %q msg %q, want code %q containing %q", r.Code, r.Msg, tt.code, tt.msg)
			}
			if tt.code != "" {
				after, _ := h.s.Encode()
				if !bytes.Equal(before, after) {
					t.Errorf("a refused command changed the state")
				}
			}
		})
	}
}

func root(policy.ID) policy.ID          { return policy.Bootstrap }
func aliceOf(alice policy.ID) policy.ID { return alice }

func TestCreatorBecomesProjectAdmin(t *testing.T) {
	h := newHarness(t)
	_, comm, _, alice := h.org()
	h.must(policy.Bootstrap, CmdGrant, BindingRecord{Principal: alice, Role: "datasphere.communities.developer", On: comm})
	proj := h.must(alice, CmdCreate, Create{Kind: policy.KindProject, Parent: comm, Name: "mine"})
	found := false
	for _, b := range h.s.Index().Bindings(proj) {
		if b.Principal == alice && b.Role.String() == "datasphere.community-projects.admin" {
			found = true
		}
	}
	if !found {
		t.Fatalf("alice created project %d but holds no community-projects.admin on it: %v", proj, h.s.Index().Bindings(proj))
	}
	if e := h.s.Entities[proj]; e.Creator != alice || e.Created.IsZero() || e.Created.Location() != time.UTC {
		t.Errorf("creator/created not recorded in UTC: %+v", e)
	}
}

func TestSecretReplaceAndProjectDeleteCascades(t *testing.T) {
	h := newHarness(t)
	_, _, proj, _ := h.org()
	id := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: "TOKEN", Sealed: []byte("one"), SecretLen: 3})
	if r := h.apply(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: "TOKEN", Sealed: []byte("two")}); r.Code != CodeExists {
		t.Fatalf("create over an existing secret without replace: %+v", r)
	}
	again := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: "TOKEN", Sealed: []byte("two!"), SecretLen: 4, Replace: true})
	if again != id || string(h.s.Entities[id].Sealed) != "two!" || h.s.Entities[id].SecretLen != 4 {
		t.Fatalf("replace did not update the secret in place: id %d→%d %+v", id, again, h.s.Entities[id])
	}
	h.must(policy.Bootstrap, CmdDelete, Delete{ID: proj})
	if _, ok := h.s.Entities[id]; ok {
		t.Fatal("deleting the project left its secret behind")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	org, comm, proj, alice := h.org()
	other := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindCommunity, Parent: org, Name: "fences"})
	secret := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindResource, Type: TypeSecret, Parent: proj, Name: "TOKEN", Sealed: []byte("sealed")})
	h.must(policy.Bootstrap, CmdGrant, BindingRecord{Principal: alice, Role: "datasphere.community-projects.developer", On: proj})
	h.must(policy.Bootstrap, CmdGrant, BindingRecord{Principal: alice, Role: "datasphere.communities.developer", On: other})
	h.must(policy.Bootstrap, CmdPublish, Publish{Resource: secret, Community: other})
	h.must(policy.Bootstrap, CmdUpdate, Update{ID: comm, Settings: map[string]string{SettingBillingAccount: "ba-1"}})
	cloud := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindCloud, Parent: org, Name: "mycloud"})
	folder := h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindFolder, Parent: cloud, Name: "robots"})
	h.must(policy.Bootstrap, CmdCreate, Create{Kind: policy.KindServiceAccount, Parent: folder, Name: "alice"})

	restored := h.restore()
	// The restored index decides like the original.
	for _, a := range []policy.Action{policy.ActUseResource, policy.ActDeleteResource, policy.ActPublishResource} {
		tgt := policy.Target{ID: secret, Via: other}
		if got, want := restored.Index().Decide(alice, a, tgt).Allowed, h.s.Index().Decide(alice, a, tgt).Allowed; got != want {
			t.Errorf("%s: restored index says %v, original %v", a, got, want)
		}
	}
	if e, ok := restored.Child(folder, policy.KindServiceAccount, "", "alice"); !ok || restored.PrincipalName(e.ID) == "unknown" {
		t.Errorf("service account not restored as a principal")
	}
	if id, ok := restored.UserByUID(1001); !ok || id != alice {
		t.Errorf("uid index not rebuilt")
	}
}

func TestUndecodableEntryPanics(t *testing.T) {
	tests := []struct {
		name string
		cmd  *Command
	}{
		{"newer version", &Command{Version: CommandVersion + 1, Type: CmdNoop}},
		{"unknown type", &Command{Version: CommandVersion, Type: "entity.teleport"}},
		{"bad payload", &Command{Version: CommandVersion, Type: CmdCreate, Payload: json.RawMessage(`{"kind":"not a number"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("applying an undecodable command did not panic")
				}
			}()
			Apply(NewState(), tt.cmd)
		})
	}
}
