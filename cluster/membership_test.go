package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

func command(t *testing.T, typ CommandType, actor policy.ID, payload any) *Command {
	t.Helper()
	c, err := NewCommand(typ, actor, payload)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A request committed twice (a retry after a leader change) applies once and
// answers both times with the first outcome, also after a snapshot; once
// out of the window it is an ordinary new command again.
func TestRetriedRequestAppliesOnce(t *testing.T) {
	s := NewState()
	create := command(t, CmdCreate, policy.Bootstrap, Create{Kind: policy.KindOrg, Parent: policy.System, Name: "acme"})
	create.Request = "r1"
	first := Apply(s, create)
	if err := first.Err(); err != nil {
		t.Fatal(err)
	}
	if again := Apply(s, create); again != first {
		t.Fatalf("retry answered %+v, want the first outcome %+v", again, first)
	}

	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := restored.Decode(data); err != nil {
		t.Fatal(err)
	}
	if again := Apply(restored, create); again != first {
		t.Fatalf("retry after a snapshot answered %+v, want %+v", again, first)
	}

	// A later command pushes r1 out of the window.
	later := command(t, CmdNoop, policy.Bootstrap, struct{}{})
	later.Request, later.Time = "r2", create.Time.Add(requestWindow+time.Second)
	Apply(s, later)
	if r := Apply(s, create); !errors.Is(r.Err(), ErrExists) {
		t.Fatalf("a request older than the window applied again answered %+v, want exists", r)
	}
}

func TestRegisterNode(t *testing.T) {
	s := NewState()
	m := Member{ID: "n2", RaftAddr: "127.0.0.3:7400", APIAddr: "127.0.0.3:7500"}
	if r := Apply(s, command(t, CmdRegisterNode, policy.Anonymous, m)); !errors.Is(r.Err(), ErrDenied) {
		t.Fatalf("anonymous registered a node: %+v", r)
	}
	if r := Apply(s, command(t, CmdRegisterNode, policy.Bootstrap, Member{ID: "n2", RaftAddr: "nowhere"})); !errors.Is(r.Err(), ErrInvalid) {
		t.Fatalf("a bad address was accepted: %+v", r)
	}
	if r := Apply(s, command(t, CmdRegisterNode, policy.Bootstrap, m)); r.Err() != nil {
		t.Fatal(r.Err())
	}
	moved := Member{ID: "n2", RaftAddr: "127.0.0.9:7400", APIAddr: "127.0.0.9:7500"}
	if r := Apply(s, command(t, CmdRegisterNode, policy.Bootstrap, moved)); r.Err() != nil {
		t.Fatal(r.Err())
	}
	if got := s.Members["n2"]; got != moved {
		t.Fatalf("n2 is registered as %+v, want %+v", got, moved)
	}

	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := restored.Decode(data); err != nil {
		t.Fatal(err)
	}
	if got := restored.Members["n2"]; got != moved {
		t.Fatalf("after a snapshot n2 is %+v, want %+v", got, moved)
	}

	if r := Apply(s, command(t, CmdDeregisterNode, policy.Bootstrap, DeregisterNode{ID: "n2"})); r.Err() != nil {
		t.Fatal(r.Err())
	}
	if r := Apply(s, command(t, CmdDeregisterNode, policy.Bootstrap, DeregisterNode{ID: "n2"})); !errors.Is(r.Err(), ErrNotFound) {
		t.Fatalf("deregistering twice: %+v", r)
	}
}
