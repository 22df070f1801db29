package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/daemon/audit"
	"github.com/sphere-sandbox/sphere/policy"
)

// MaxSecretSize bounds a secret's value; a secret is a token or a key, and
// every node keeps every secret in memory.
const MaxSecretSize = 64 << 10

// sealSecret encrypts a value for a project's secret and builds the command
// that stores it. The plaintext never leaves this function.
func (d *Daemon) sealSecret(c caller, projectRef, name string, value []byte, replace bool) (cluster.Create, error) {
	if err := cluster.ValidateSecretName(name); err != nil {
		return cluster.Create{}, err
	}
	if len(value) > MaxSecretSize {
		return cluster.Create{}, cluster.Errorf(cluster.CodeInvalid, "secret value is %d bytes; the limit is %d", len(value), MaxSecretSize)
	}
	var cmd cluster.Create
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var p *cluster.Entity
		if p, err = d.resolve(s, c, "project:"+projectRef); err != nil {
			return
		}
		path := s.Path(p.ID)
		var sealed []byte
		if sealed, err = d.master.Seal(p.DataKey, path, secretPath(path, name), value); err != nil {
			return
		}
		cmd = cluster.Create{Kind: policy.KindResource, Type: cluster.TypeSecret, Parent: p.ID, Name: name,
			Sealed: sealed, SecretLen: len(value), Replace: replace}
	})
	return cmd, err
}

// secretPath is the additional data a secret is sealed with: moving its
// ciphertext to another secret or project makes it fail to open.
func secretPath(projectPath, name string) string {
	return projectPath + "/secrets/" + name
}

func (d *Daemon) secretPut(ctx context.Context, c caller, req api.SecretPutReq) (any, error) {
	cmd, err := d.sealSecret(c, req.Project, req.Name, req.Value, req.Replace)
	if err != nil {
		return nil, err
	}
	id, err := d.propose(ctx, c, cluster.CmdCreate, cmd)
	d.auditSecret(c, "secret.write", req.Project+"/secrets/"+req.Name, err)
	if err != nil {
		return nil, err
	}
	return d.entityByID(c, id)
}

// readSecret decides, audits and decrypts one secret for an API caller.
func (d *Daemon) readSecret(c caller, id policy.ID) ([]byte, error) {
	dec := d.decide(c.Principal, policy.ActUseResource, policy.Target{ID: id})
	var path string
	d.node.FSM().Read(func(s *cluster.State) { path = s.Path(id) })
	d.audit.Record(audit.Record{
		Time: time.Now(), UID: c.UID, Principal: c.Name, Action: "secret.read", Path: path,
		Decision: decision(dec.Allowed), Binding: d.bindingText(dec), Missing: dec.Missing,
	})
	if !dec.Allowed {
		return nil, cluster.Errorf(cluster.CodeDenied, "permission denied: reading secret %s needs %s", path, dec.Missing)
	}
	return d.openSecret(id)
}

// openSecret decrypts a secret whose reading has been allowed.
func (d *Daemon) openSecret(id policy.ID) ([]byte, error) {
	var sealed, key []byte
	var projectPath, path string
	d.node.FSM().Read(func(s *cluster.State) {
		e, ok := s.Entities[id]
		if !ok || e.Type != cluster.TypeSecret {
			return
		}
		p := s.Entities[e.Parent]
		sealed, key = e.Sealed, p.DataKey
		projectPath, path = s.Path(p.ID), s.Path(id)
	})
	if path == "" {
		return nil, cluster.Errorf(cluster.CodeNotFound, "secret not found")
	}
	value, err := d.master.Open(key, projectPath, path, sealed)
	if err != nil {
		// Never serve garbage: a secret that does not open is an error.
		return nil, fmt.Errorf("secret %s cannot be decrypted: %w", path, err)
	}
	return value, nil
}

// secretEnv gives `sphere exec` the secrets the caller may read.
func (d *Daemon) secretEnv(_ context.Context, c caller, req api.ProjectReq) (any, error) {
	var project policy.ID
	var ids []policy.ID
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var p *cluster.Entity
		if p, err = d.resolve(s, c, "project:"+req.Project); err != nil {
			return
		}
		project = p.ID
		for _, e := range s.Children(p.ID, policy.KindResource, cluster.TypeSecret) {
			ids = append(ids, e.ID)
		}
	})
	if err != nil {
		return nil, err
	}
	if dec := d.decide(c.Principal, policy.ActRunCode, policy.Target{ID: project}); !dec.Allowed {
		return nil, cluster.Errorf(cluster.CodeDenied, "permission denied: running code in project %s needs %s", req.Project, dec.Missing)
	}
	env := api.SecretEnv{Env: map[string]string{}}
	for _, id := range ids {
		v, err := d.readSecret(c, id)
		if cluster.CodeOf(err) == cluster.CodeDenied {
			continue
		}
		if err != nil {
			return nil, err
		}
		var name string
		d.node.FSM().Read(func(s *cluster.State) { name = s.Entities[id].Name })
		env.Env[name] = string(v)
	}
	return env, nil
}

func decision(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}

// bindingText names the binding behind a decision for the audit log.
func (d *Daemon) bindingText(dec policy.Decision) string {
	if !dec.Allowed {
		return ""
	}
	var out string
	d.node.FSM().Read(func(s *cluster.State) {
		out = fmt.Sprintf("%s %s on %s", principalRef(s, dec.By.Principal), dec.By.Role, d.entityRef(s, dec.By.On))
	})
	return out
}

func (d *Daemon) auditSecret(c caller, action, path string, err error) {
	r := audit.Record{Time: time.Now(), UID: c.UID, Principal: c.Name, Action: action, Path: path, Decision: "allow"}
	if err != nil {
		r.Decision, r.Missing = "deny", err.Error()
	}
	d.audit.Record(r)
}
