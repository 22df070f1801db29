package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
	"github.com/sphere-sandbox/sphere/s3mount"
)

// An S3 connector is a project resource of type s3 whose settings hold the
// seed's fields. Its key's value is not among them: it is a project secret
// (encrypted like any), named by the key-secret setting.
const (
	s3Endpoint  = "endpoint"
	s3Bucket    = "bucket"
	s3KeyID     = "key-id"
	s3KeySecret = "key-secret"
	s3Mode      = "mode"
	s3Backend   = "backend"
	s3Active    = "active"
)

func validateS3Mode(v string) error {
	if v != "ro" && v != "rw" {
		return cluster.Errorf(cluster.CodeInvalid, "--mode is ro (read-only) or rw (read-write), not %q", v)
	}
	return nil
}

func (d *Daemon) s3Create(ctx context.Context, c caller, req api.S3CreateReq) (any, error) {
	if err := cluster.ValidateName(req.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(req.Description); err != nil {
		return nil, err
	}
	if req.Mode == "" {
		req.Mode = "ro"
	}
	if err := validateS3Mode(req.Mode); err != nil {
		return nil, err
	}
	if req.Backend == "" {
		req.Backend = "s3"
	}
	if err := cluster.ValidateName(req.Backend); err != nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "invalid backend: %v", err)
	}
	if req.KeyID == "" {
		return nil, cluster.Errorf(cluster.CodeInvalid, "--key-id is required: the static key's id")
	}
	cfg := s3mount.Config{Endpoint: req.Endpoint, Bucket: req.Bucket, KeyID: req.KeyID, ReadOnly: req.Mode == "ro", Timeout: d.cfg.S3Timeout, Logger: d.log}
	if _, err := s3mount.ParseEndpoints(req.Endpoint); err != nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "invalid endpoint: %v", err)
	}
	if err := s3mount.ValidateBucketName(req.Bucket); err != nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "invalid bucket name: %v", err)
	}
	// The creator must be able to read the key's secret: a connector is a
	// way to use it.
	var project, secret policy.ID
	var err error
	d.node.FSM().Read(func(s *cluster.State) {
		var p, sec *cluster.Entity
		if p, err = d.resolve(s, c, "project:"+req.Project); err != nil {
			return
		}
		project = p.ID
		// Refused by a limit before the endpoint is tried: the state
		// machine decides again when the connector is created.
		if err = s.CheckCountLimit(p, cluster.TypeS3); err != nil {
			return
		}
		if sec, err = d.resolve(s, c, "resource:"+req.Project+"/secrets/"+req.KeySecret); err != nil {
			err = cluster.Errorf(cluster.CodeInvalid, "--key-secret %q: %v; create it first with `sphere secret create %s %s`", req.KeySecret, err, req.Project, req.KeySecret)
			return
		}
		secret = sec.ID
	})
	if err != nil {
		return nil, err
	}
	value, err := d.readSecret(c, secret)
	if err != nil {
		return nil, err
	}
	cfg.Secret = string(value)
	clear(value)
	// Check the endpoint, bucket and credentials now: a wrong one is a clear
	// error here, not a broken mount later.
	b, err := s3mount.Open(ctx, cfg)
	if err != nil {
		return nil, cluster.Errorf(cluster.CodeInvalid, "connector check failed: %v", err)
	}
	b.Close()
	cmd := cluster.Create{Kind: policy.KindResource, Type: cluster.TypeS3, Parent: project, Name: req.Name, Description: req.Description,
		Settings: map[string]string{
			s3Endpoint: req.Endpoint, s3Bucket: req.Bucket, s3KeyID: req.KeyID, s3KeySecret: req.KeySecret,
			s3Mode: req.Mode, s3Backend: req.Backend, s3Active: "false",
		}}
	id, err := d.propose(ctx, c, cluster.CmdCreate, cmd)
	if err != nil {
		return nil, err
	}
	return d.entityByID(c, id)
}

// s3Activate makes a connector appear (or vanish) as s3/NAME in every mount
// of its project and of the projects it is published to.
func (d *Daemon) s3Activate(ctx context.Context, c caller, req api.S3ActivateReq) (any, error) {
	e, err := d.lookup(c, req.Ref)
	if err != nil {
		return nil, err
	}
	if e.Type != cluster.TypeS3 {
		return nil, cluster.Errorf(cluster.CodeInvalid, "%s is not an S3 connector", req.Ref)
	}
	value := "false"
	if req.Active {
		value = "true"
	}
	if _, err := d.propose(ctx, c, cluster.CmdUpdate, cluster.Update{ID: e.ID, Settings: map[string]string{s3Active: value}}); err != nil {
		return nil, err
	}
	d.buckets.forget(e.ID)
	return d.entityByID(c, e.ID)
}

// bucketCache keeps one open s3mount.Bucket per connector, so its listing
// cache and connection pool serve every mount and every caller. An entry is
// keyed by the connector's modification time: a changed connector (or
// rotated key) opens a fresh bucket.
type bucketCache struct {
	d  *Daemon
	mu sync.Mutex
	m  map[policy.ID]cachedBucket
}

type cachedBucket struct {
	modified time.Time
	secret   time.Time
	b        *s3mount.Bucket
}

func (bc *bucketCache) get(ctx context.Context, id policy.ID) (*s3mount.Bucket, error) {
	var cfg s3mount.Config
	var modified, secretModified time.Time
	var secretID policy.ID
	var err error
	bc.d.node.FSM().Read(func(s *cluster.State) {
		e, ok := s.Entities[id]
		if !ok || e.Type != cluster.TypeS3 {
			err = cluster.Errorf(cluster.CodeNotFound, "connector not found")
			return
		}
		if e.Settings[s3Active] != "true" {
			err = errInactive
			return
		}
		sec, ok := s.Child(e.Parent, policy.KindResource, cluster.TypeSecret, e.Settings[s3KeySecret])
		if !ok {
			err = fmt.Errorf("connector %s: its key secret %q no longer exists", s.Path(id), e.Settings[s3KeySecret])
			return
		}
		secretID, secretModified, modified = sec.ID, sec.Modified, e.Modified
		cfg = s3mount.Config{Endpoint: e.Settings[s3Endpoint], Bucket: e.Settings[s3Bucket], KeyID: e.Settings[s3KeyID],
			ReadOnly: e.Settings[s3Mode] != "rw", Timeout: bc.d.cfg.S3Timeout, Logger: bc.d.log}
	})
	if err != nil {
		return nil, err
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if c, ok := bc.m[id]; ok && c.modified.Equal(modified) && c.secret.Equal(secretModified) {
		return c.b, nil
	}
	value, err := bc.d.openSecret(secretID)
	if err != nil {
		return nil, err
	}
	cfg.Secret = string(value)
	clear(value)
	b, err := s3mount.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if old, ok := bc.m[id]; ok {
		old.b.Close()
	}
	bc.m[id] = cachedBucket{modified: modified, secret: secretModified, b: b}
	return b, nil
}

func (bc *bucketCache) forget(id policy.ID) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if c, ok := bc.m[id]; ok {
		c.b.Close()
		delete(bc.m, id)
	}
}

func (bc *bucketCache) closeAll() {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	for id, c := range bc.m {
		c.b.Close()
		delete(bc.m, id)
	}
}
