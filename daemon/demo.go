package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
)

// The demo organization `make run` creates on a first start, so that a new
// user's first `ls mnt/` already shows a project, a secret, and what another
// uid sees. The README walks through exactly these names.
const (
	demoProject = "demo/lab/sandbox"
	demoSecret  = "GREETING"
	demoValue   = "hello from sphere\n"
	demoDataset = "samples"
	demoFile    = "iris.csv"
	demoCSV     = "sepal_length,sepal_width,petal_length,petal_width,species\n" +
		"5.1,3.5,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n"
)

// demoUsers are registered with the roles the README shows off: alice may
// work in the project and read its secret; bob may only look.
var demoUsers = []struct {
	name, role string
	uid        uint32
}{
	{"alice", "datasphere.community-projects.developer", 1001},
	{"bob", "datasphere.community-projects.viewer", 1002},
}

func (d *Daemon) createDemo(ctx context.Context) error {
	root := caller{Local: true, Principal: policy.Bootstrap, Name: "root"}
	steps := []func() error{
		func() error {
			_, err := d.create(ctx, root, api.CreateReq{Ref: "org:demo", Description: "a demo organization"})
			return err
		},
		func() error {
			_, err := d.create(ctx, root, api.CreateReq{Ref: "community:demo/lab", Description: "a demo community"})
			return err
		},
		func() error {
			_, err := d.create(ctx, root, api.CreateReq{Ref: "project:" + demoProject, Description: "a demo project"})
			return err
		},
		func() error {
			_, err := d.secretPut(ctx, root, api.SecretPutReq{Project: demoProject, Name: demoSecret, Value: []byte(demoValue)})
			return err
		},
		func() error { return d.createDemoDataset(ctx, root) },
	}
	for _, u := range demoUsers {
		steps = append(steps,
			func() error { _, err := d.userAdd(ctx, root, api.UserAddReq{Name: u.name, UID: u.uid}); return err },
			func() error {
				_, err := d.grant(ctx, root, api.GrantReq{Role: u.role, Principal: "user:" + u.name, On: "project:" + demoProject})
				return err
			})
	}
	for _, step := range steps {
		if err := step(); err != nil && cluster.CodeOf(err) != cluster.CodeExists {
			return err
		}
	}
	return d.mounts.mount(ctx, root, demoProject, d.cfg.DemoMount, true)
}

// createDemoDataset adds a small sealed dataset, so `cat` and pandas have
// something to read in the demo project.
func (d *Daemon) createDemoDataset(ctx context.Context, root caller) error {
	v, err := d.datasetCreate(ctx, root, api.DatasetCreateReq{Project: demoProject, Name: demoDataset, Description: "a sample of the iris data"})
	if err != nil {
		return err
	}
	id := policy.ID(v.(api.Entity).ID)
	chunks, size, err := d.storeContent(ctx, strings.NewReader(demoCSV))
	if err != nil {
		return err
	}
	if err := d.commitFile(ctx, root.Principal, id, demoFile, time.Now().UTC(), chunks, size); err != nil {
		return err
	}
	_, err = d.propose(ctx, root, cluster.CmdDatasetSeal, cluster.DatasetSeal{Dataset: id})
	return err
}
