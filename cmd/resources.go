package cmd

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// A project's resources with a descriptor: images, nodes, aliases, Data Proc
// templates and models. Each is a noun (entity.go) whose flags give the
// descriptor's fields; the daemon and the state machine check them.

// resourceCommand is the command of a project's resources of type kind,
// found in folder of a mount.
func resourceCommand(kind, folder, usage string, r resourceNoun) *cli.Command {
	r.folder = folder
	return noun{kind: kind, path: "ORG/C/P NAME", parentPath: "ORG/C/P", res: &r}.command(usage)
}

// fieldsOf copies the string flags that are set into descriptor fields,
// named as the flags are with _ for -.
func fieldsOf(c *cli.Context, names ...string) map[string]any {
	fields := map[string]any{}
	for _, name := range names {
		if c.IsSet(name) {
			fields[strings.ReplaceAll(name, "-", "_")] = c.String(name)
		}
	}
	return fields
}

func cmdImage() *cli.Command {
	return resourceCommand("image", "images", "Docker images: an environment for nodes and code, from a registry or a Dockerfile", resourceNoun{
		flags: []cli.Flag{
			&cli.StringFlag{Name: "tag", Usage: "the image's tag (default latest)"},
			&cli.StringFlag{Name: "registry", Usage: "source: a registry reference, [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST]"},
			&cli.StringFlag{Name: "dockerfile", Usage: "source: a Dockerfile, read from this file"},
			&cli.StringFlag{Name: "state", Usage: "pending, ready or failed: what a build made elsewhere gave (a registry image is ready)"},
		},
		spec: func(c *cli.Context) (map[string]any, error) {
			fields := fieldsOf(c, "tag", "registry", "state")
			if f := c.String("dockerfile"); f != "" {
				text, err := readSmallFile(f)
				if err != nil {
					return nil, usagef("--dockerfile: %v", err)
				}
				fields["dockerfile"] = text
			} else if c.IsSet("dockerfile") {
				fields["dockerfile"] = ""
			}
			return fields, nil
		},
	})
}

// readSmallFile reads a file the daemon bounds far below this.
func readSmallFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b), err
}

func cmdNode() *cli.Command {
	return resourceCommand("node", "nodes", "nodes: deployed model services, with an endpoint", resourceNoun{
		flags: []cli.Flag{
			&cli.StringFlag{Name: "kind", Usage: "python (code) or docker (an image of the project)"},
			&cli.StringFlag{Name: "image", Usage: "docker nodes: the project's image to run"},
			&cli.StringFlag{Name: "instance", Usage: "the configuration: c1.4, c1.8, c1.32, c1.80, g1.1, g1.2, g1.4, g2.1, g2.2, g2.4, g2.8"},
			&cli.IntFlag{Name: "instances", Usage: "how many instances serve it, 1 to 16 (default 1)"},
			&cli.StringFlag{Name: "state", Usage: "running (the default) or stopped"},
		},
		spec: func(c *cli.Context) (map[string]any, error) {
			fields := fieldsOf(c, "kind", "image", "instance", "state")
			if c.IsSet("instances") {
				fields["instances"] = c.Int("instances")
			}
			return fields, nil
		},
	})
}

func cmdAlias() *cli.Command {
	return resourceCommand("alias", "aliases", "aliases: one endpoint balancing between a project's nodes by weight", resourceNoun{
		flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "node", Usage: "NODE=WEIGHT, once per node of the project; the weights add up to 100 (set replaces them all)"},
		},
		spec: func(c *cli.Context) (map[string]any, error) {
			if !c.IsSet("node") {
				return nil, nil
			}
			var nodes []map[string]any
			for _, nw := range c.StringSlice("node") {
				name, w, ok := strings.Cut(nw, "=")
				weight, err := strconv.Atoi(w)
				if !ok || err != nil {
					return nil, usagef("--node %q: NODE=WEIGHT, the weight a whole number", nw)
				}
				nodes = append(nodes, map[string]any{"node": name, "weight": weight})
			}
			return map[string]any{"nodes": nodes}, nil
		},
	})
}

func cmdDataprocTemplate() *cli.Command {
	return resourceCommand("dataproc-template", "dataproc-templates", "Data Proc templates: cluster configurations ready to deploy", resourceNoun{
		flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Usage: "the Data Proc image version: 2.0 or 2.1"},
			&cli.StringSliceFlag{Name: "services", Usage: "services, comma-separated: HDFS, YARN, SPARK, HIVE, MAPREDUCE, TEZ, ZOOKEEPER, HBASE, LIVY, ZEPPELIN, OOZIE, FLUME, SQOOP"},
			&cli.StringSliceFlag{Name: "host-group", Usage: "NAME:ROLE:PRESET:DISK_GB:HOSTS, once per group; ROLE masternode (exactly one, 1 host), datanode or computenode; PRESET like s2.micro"},
		},
		spec: func(c *cli.Context) (map[string]any, error) {
			fields := fieldsOf(c, "version")
			if c.IsSet("services") {
				fields["services"] = c.StringSlice("services")
			}
			if c.IsSet("host-group") {
				var groups []map[string]any
				for _, g := range c.StringSlice("host-group") {
					f := strings.Split(g, ":")
					var disk, hosts int
					var err error
					if len(f) == 5 {
						if disk, err = strconv.Atoi(f[3]); err == nil {
							hosts, err = strconv.Atoi(f[4])
						}
					}
					if len(f) != 5 || err != nil {
						return nil, usagef("--host-group %q: NAME:ROLE:PRESET:DISK_GB:HOSTS, like data:datanode:s2.small:100:3", g)
					}
					groups = append(groups, map[string]any{"name": f[0], "role": f[1], "preset": f[2], "disk_gb": disk, "hosts": hosts})
				}
				fields["host_groups"] = groups
			}
			return fields, nil
		},
	})
}

func cmdModel() *cli.Command {
	return resourceCommand("model", "models", "models and checkpoints: what produced them, and their files (content-verified and cached like a sealed dataset's)", resourceNoun{
		flags: []cli.Flag{
			&cli.StringFlag{Name: "produced-by", Usage: "what produced it: a notebook, a job, a training run"},
			&cli.BoolFlag{Name: "checkpoint", Usage: "it is a checkpoint, not a finished model"},
		},
		createFlags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "the local folder of its files: uploaded, then sealed"},
		},
		spec: func(c *cli.Context) (map[string]any, error) {
			if from := c.String("from"); from != "" {
				if fi, err := os.Stat(from); err != nil || !fi.IsDir() {
					return nil, usagef("--from %s: not a readable folder", from)
				}
			}
			fields := fieldsOf(c, "produced-by")
			if c.IsSet("checkpoint") {
				fields["kind"] = map[bool]string{true: "checkpoint", false: "model"}[c.Bool("checkpoint")]
			}
			return fields, nil
		},
		created: func(c *cli.Context, ref string) error {
			err := upload(c, ref, c.String("from"))
			if err == nil {
				return call(c, api.MDatasetSeal, api.RefReq{Ref: ref}, nil)
			}
			// Nothing half-made stays behind: a model is all its files.
			if derr := call(c, api.MDelete, api.RefReq{Ref: ref}, nil); derr != nil {
				return fmt.Errorf("%w (and deleting the incomplete model failed: %v)", err, derr)
			}
			return err
		},
	})
}
