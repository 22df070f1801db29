package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sphere-sandbox/sphere/policy"
)

// Descriptors (SPEC §5). Docker images, nodes, aliases, Data Proc templates
// and models carry a typed descriptor in Entity.Spec. The daemon checks a
// descriptor's fields before it proposes one, for an early clear error; the
// state machine decodes and checks it again at apply time, together with
// what only the replicated state can decide without races: the resources
// it names (a node's image, an alias's nodes) and the fields sphere assigns
// (endpoints, an instance's resources). It stores the descriptor re-encoded
// from the Go value, so the bytes are canonical on every node.

// Spec is a resource's descriptor.
type Spec interface {
	// normalize checks the fields on their own (syntax, known values,
	// bounds) and puts them in canonical form (sorted, defaults derived).
	normalize() error
}

// referrer is a descriptor that names other resources of its project.
type referrer interface {
	references() []reference
}

// reference names a resource of the same project.
type reference struct{ typ, name string }

// assigner is a descriptor with fields sphere assigns, not the user.
type assigner interface {
	assign(id policy.ID)
}

// specTypes makes, for each type with a descriptor, the value a create
// starts from: its defaults.
var specTypes = map[string]func() Spec{
	TypeImage:            func() Spec { return &ImageSpec{Tag: "latest"} },
	TypeNode:             func() Spec { return &NodeSpec{Instances: 1, State: NodeRunning} },
	TypeAlias:            func() Spec { return &AliasSpec{} },
	TypeDataprocTemplate: func() Spec { return &DataprocSpec{} },
	TypeModel:            func() Spec { return &ModelSpec{Kind: ModelKindModel} },
}

// assignedFields are the descriptor fields a user may not give.
var assignedFields = map[string][]string{
	TypeNode:  {"endpoint", "resources"},
	TypeAlias: {"endpoint"},
}

// HasSpec reports whether resources of type typ carry a descriptor.
func HasSpec(typ string) bool { return specTypes[typ] != nil }

// maxSpec bounds a descriptor as given: a Dockerfile's text and some fields.
const maxSpec = 128 << 10

// DecodeSpec reads and checks a descriptor of type typ: the fields of patch
// over those of base (a stored descriptor, for an update; nil for a create,
// which starts from the defaults). Fields are replaced whole, lists too.
func DecodeSpec(typ string, base, patch json.RawMessage) (Spec, error) {
	newSpec, ok := specTypes[typ]
	if !ok {
		return nil, Errorf(CodeInvalid, "a %s has no descriptor", typ)
	}
	if len(patch) > maxSpec {
		return nil, Errorf(CodeInvalid, "the %s descriptor is %d bytes; the limit is %d", typ, len(patch), maxSpec)
	}
	fields := map[string]json.RawMessage{}
	if len(base) > 0 {
		if err := json.Unmarshal(base, &fields); err != nil {
			return nil, Errorf(CodeInternal, "stored %s descriptor: %v", typ, err)
		}
	}
	var given map[string]json.RawMessage
	if len(patch) > 0 {
		if err := json.Unmarshal(patch, &given); err != nil {
			return nil, Errorf(CodeInvalid, "invalid %s descriptor: %v", typ, err)
		}
	}
	for k, v := range given {
		if slices.Contains(assignedFields[typ], k) {
			return nil, Errorf(CodeInvalid, "invalid %s descriptor: %q is assigned by sphere, not given", typ, k)
		}
		fields[k] = v
	}
	merged, err := json.Marshal(fields)
	if err != nil {
		return nil, Errorf(CodeInvalid, "invalid %s descriptor: %v", typ, err)
	}
	v := newSpec()
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, Errorf(CodeInvalid, "invalid %s descriptor: %v", typ, err)
	}
	if err := v.normalize(); err != nil {
		return nil, err
	}
	return v, nil
}

// setSpec gives the resource e, at apply time, the descriptor patch makes
// of its own: decoded and checked, what it names resolved in e's project,
// what sphere assigns assigned, encoded canonically. A refused descriptor
// leaves e as it was. A type without a descriptor takes none.
func (s *State) setSpec(e *Entity, patch json.RawMessage) error {
	if !HasSpec(e.Type) {
		if patch != nil {
			return Errorf(CodeInvalid, "a %s has no descriptor", e.Type)
		}
		return nil
	}
	v, err := DecodeSpec(e.Type, e.Spec, patch)
	if err != nil {
		return err
	}
	if r, ok := v.(referrer); ok {
		for _, ref := range r.references() {
			if _, ok := s.Child(e.Parent, policy.KindResource, ref.typ, ref.name); !ok {
				return Errorf(CodeInvalid, "%s %q names %s %q, which project %s does not have", e.Type, e.Name, ref.typ, ref.name, s.Path(e.Parent))
			}
		}
	}
	if a, ok := v.(assigner); ok {
		a.assign(e.ID)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return Errorf(CodeInternal, "encode the %s descriptor: %v", e.Type, err)
	}
	e.Spec = raw
	return nil
}

// referrerOf returns a resource of e's project whose descriptor names e.
func (s *State) referrerOf(e *Entity) (*Entity, bool) {
	for _, other := range s.Children(e.Parent, policy.KindResource, "") {
		if !HasSpec(other.Type) {
			continue
		}
		v, err := DecodeSpec(other.Type, other.Spec, nil)
		r, ok := v.(referrer)
		if err != nil || !ok {
			continue
		}
		if slices.Contains(r.references(), reference{e.Type, e.Name}) {
			return other, true
		}
	}
	return nil, false
}

// Image states. sphere builds nothing: an image from a registry is ready as
// it is; one from a Dockerfile is pending until a build made elsewhere is
// recorded as ready (or failed) with `sphere image set --state`.
const (
	ImagePending = "pending"
	ImageReady   = "ready"
	ImageFailed  = "failed"
)

// ImageSpec is a Docker image: its tag and one source, a registry
// reference or a Dockerfile's text.
type ImageSpec struct {
	Tag        string `json:"tag"`
	Registry   string `json:"registry,omitempty"`
	Dockerfile string `json:"dockerfile,omitempty"`
	State      string `json:"state"`
}

// maxDockerfile bounds a Dockerfile's text: it is replicated to every node.
const maxDockerfile = 64 << 10

var (
	// tagRE is Docker's tag grammar.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// registryRE is Docker's reference grammar: [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST].
	registryRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?/)?` +
		`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
		`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`)
)

// maxRegistryRef is Docker's limit on a reference's length.
const maxRegistryRef = 255

func (v *ImageSpec) normalize() error {
	if !tagRE.MatchString(v.Tag) {
		return Errorf(CodeInvalid, "invalid image tag %q: 1-128 characters of A-Z a-z 0-9 _ . -, not starting with . or -", v.Tag)
	}
	switch {
	case (v.Registry == "") == (v.Dockerfile == ""):
		return Errorf(CodeInvalid, "an image has exactly one source: a registry reference or a Dockerfile")
	case v.Registry != "" && (len(v.Registry) > maxRegistryRef || !registryRE.MatchString(v.Registry)):
		return Errorf(CodeInvalid, "invalid registry reference %q: [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST], lowercase path, at most %d characters", v.Registry, maxRegistryRef)
	case v.Dockerfile != "":
		if err := checkDockerfile(v.Dockerfile); err != nil {
			return err
		}
	}
	switch v.State {
	case "":
		v.State = ImagePending
		if v.Registry != "" {
			v.State = ImageReady
		}
	case ImagePending, ImageReady, ImageFailed:
	default:
		return Errorf(CodeInvalid, "invalid image state %q: pending, ready or failed", v.State)
	}
	return nil
}

// checkDockerfile checks that text is a Dockerfile: bounded, and its first
// instruction (after comments and ARGs) is FROM.
func checkDockerfile(text string) error {
	if len(text) > maxDockerfile {
		return Errorf(CodeInvalid, "the Dockerfile is %d bytes; the limit is %d", len(text), maxDockerfile)
	}
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return Errorf(CodeInvalid, "the Dockerfile is not text: NUL or invalid UTF-8")
	}
	for _, line := range strings.Split(text, "\n") {
		word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(word) {
		case "", "ARG":
		case "FROM":
			return nil
		default:
			if !strings.HasPrefix(word, "#") {
				return Errorf(CodeInvalid, "the Dockerfile's first instruction is %s; it must be FROM", word)
			}
		}
	}
	return Errorf(CodeInvalid, "the Dockerfile has no FROM instruction")
}

// Node kinds and states. sphere runs no services: a node's state is the
// state it is meant to be in, changed with `sphere node set --state`.
const (
	NodePython  = "python"
	NodeDocker  = "docker"
	NodeRunning = "running"
	NodeStopped = "stopped"
)

// Instance is what one instance of a configuration has.
type Instance struct {
	CPU      int    `json:"cpu"`
	MemoryGB int    `json:"memory_gb"`
	GPUs     int    `json:"gpus,omitempty"`
	GPU      string `json:"gpu,omitempty"`
}

// Instances are DataSphere's computing resource configurations.
var Instances = map[string]Instance{
	"c1.4":  {CPU: 4, MemoryGB: 32},
	"c1.8":  {CPU: 8, MemoryGB: 64},
	"c1.32": {CPU: 32, MemoryGB: 256},
	"c1.80": {CPU: 80, MemoryGB: 640},
	"g1.1":  {CPU: 8, MemoryGB: 96, GPUs: 1, GPU: "V100"},
	"g1.2":  {CPU: 16, MemoryGB: 192, GPUs: 2, GPU: "V100"},
	"g1.4":  {CPU: 32, MemoryGB: 384, GPUs: 4, GPU: "V100"},
	"g2.1":  {CPU: 28, MemoryGB: 119, GPUs: 1, GPU: "A100"},
	"g2.2":  {CPU: 56, MemoryGB: 238, GPUs: 2, GPU: "A100"},
	"g2.4":  {CPU: 112, MemoryGB: 476, GPUs: 4, GPU: "A100"},
	"g2.8":  {CPU: 224, MemoryGB: 952, GPUs: 8, GPU: "A100"},
}

// maxNodeInstances bounds how many instances a node runs.
const maxNodeInstances = 16

// NodeSpec is a node: a deployed model service, Python code or a Docker
// image of its project, on Instances instances of one configuration.
type NodeSpec struct {
	Kind      string   `json:"kind"`
	Image     string   `json:"image,omitempty"` // docker: an image of the project
	Instance  string   `json:"instance"`        // a key of Instances
	Instances int      `json:"instances"`
	Resources Instance `json:"resources"`          // assigned: what Instance has
	Endpoint  string   `json:"endpoint,omitempty"` // assigned
	State     string   `json:"state"`
}

func (v *NodeSpec) normalize() error {
	switch v.Kind {
	case NodeDocker:
		if v.Image == "" {
			return Errorf(CodeInvalid, "a docker node runs an image of its project: name it (image)")
		}
		if err := ValidateName(v.Image); err != nil {
			return Errorf(CodeInvalid, "a docker node names an image of its project: %v", err)
		}
	case NodePython:
		if v.Image != "" {
			return Errorf(CodeInvalid, "a python node runs no image; only docker nodes name one")
		}
	default:
		return Errorf(CodeInvalid, "invalid node kind %q: python or docker", v.Kind)
	}
	if _, ok := Instances[v.Instance]; !ok {
		return Errorf(CodeInvalid, "invalid instance configuration %q: one of %s", v.Instance, strings.Join(keys(Instances), ", "))
	}
	if v.Instances < 1 || v.Instances > maxNodeInstances {
		return Errorf(CodeInvalid, "a node runs 1 to %d instances, not %d", maxNodeInstances, v.Instances)
	}
	if v.State != NodeRunning && v.State != NodeStopped {
		return Errorf(CodeInvalid, "invalid node state %q: running or stopped", v.State)
	}
	return nil
}

func (v *NodeSpec) references() []reference {
	if v.Kind != NodeDocker {
		return nil
	}
	return []reference{{TypeImage, v.Image}}
}

func (v *NodeSpec) assign(id policy.ID) {
	v.Resources = Instances[v.Instance]
	v.Endpoint = endpoint("node", id)
}

// endpoint is the address a node or an alias answers at: derived from its
// ID, so it never changes and never meets another's.
func endpoint(kind string, id policy.ID) string {
	return fmt.Sprintf("https://%s-%d.sphere.local", kind, id)
}

// maxAliasNodes bounds the nodes one alias balances between.
const maxAliasNodes = 16

// AliasSpec is an alias: nodes of its project and the share of the load
// each gets, in percent.
type AliasSpec struct {
	Nodes    []AliasNode `json:"nodes"`
	Endpoint string      `json:"endpoint,omitempty"` // assigned
}

// AliasNode is one node of an alias and its weight.
type AliasNode struct {
	Node   string `json:"node"`
	Weight int    `json:"weight"`
}

func (v *AliasSpec) normalize() error {
	if len(v.Nodes) == 0 || len(v.Nodes) > maxAliasNodes {
		return Errorf(CodeInvalid, "an alias balances between 1 and %d nodes, not %d", maxAliasNodes, len(v.Nodes))
	}
	slices.SortFunc(v.Nodes, func(a, b AliasNode) int { return strings.Compare(a.Node, b.Node) })
	sum := 0
	for i, n := range v.Nodes {
		if err := ValidateName(n.Node); err != nil {
			return Errorf(CodeInvalid, "alias node: %v", err)
		}
		if i > 0 && v.Nodes[i-1].Node == n.Node {
			return Errorf(CodeInvalid, "node %q is in the alias twice", n.Node)
		}
		if n.Weight < 0 || n.Weight > 100 {
			return Errorf(CodeInvalid, "node %q has weight %d; a weight is 0 to 100", n.Node, n.Weight)
		}
		sum += n.Weight
	}
	if sum != 100 {
		return Errorf(CodeInvalid, "the alias's weights add up to %d; they must add up to 100", sum)
	}
	return nil
}

func (v *AliasSpec) references() []reference {
	out := make([]reference, len(v.Nodes))
	for i, n := range v.Nodes {
		out[i] = reference{TypeNode, n.Node}
	}
	return out
}

func (v *AliasSpec) assign(id policy.ID) { v.Endpoint = endpoint("alias", id) }

// Data Proc: the image versions, services, host roles and resource presets
// a template may use.
var (
	DataprocVersions = []string{"2.0", "2.1"}
	DataprocServices = []string{"FLUME", "HBASE", "HDFS", "HIVE", "LIVY", "MAPREDUCE", "OOZIE", "SPARK", "SQOOP", "TEZ", "YARN", "ZEPPELIN", "ZOOKEEPER"}
	DataprocPresets  = []string{"b2.medium", "m2.large", "m2.medium", "m2.micro", "m2.small", "s2.large", "s2.medium", "s2.micro", "s2.small", "s2.xlarge"}
)

// Host roles of a Data Proc cluster.
const (
	RoleMaster  = "masternode"
	RoleData    = "datanode"
	RoleCompute = "computenode"
)

// Bounds of a Data Proc template.
const (
	maxHostGroups = 8
	maxGroupHosts = 32
	minDiskGB     = 20
	maxDiskGB     = 4096
)

// needsYARN are the services that run on YARN.
var needsYARN = []string{"HIVE", "MAPREDUCE", "SPARK", "TEZ"}

// DataprocSpec is a Data Proc cluster's configuration, ready to deploy.
type DataprocSpec struct {
	Version    string      `json:"version"`
	Services   []string    `json:"services"`
	HostGroups []HostGroup `json:"host_groups"`
}

// HostGroup is a group of alike hosts of a Data Proc cluster.
type HostGroup struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Preset string `json:"preset"`
	DiskGB int    `json:"disk_gb"`
	Hosts  int    `json:"hosts"`
}

func (v *DataprocSpec) normalize() error {
	if !slices.Contains(DataprocVersions, v.Version) {
		return Errorf(CodeInvalid, "invalid Data Proc version %q: one of %s", v.Version, strings.Join(DataprocVersions, ", "))
	}
	if len(v.Services) == 0 {
		return Errorf(CodeInvalid, "a Data Proc template needs at least one service (%s)", strings.Join(DataprocServices, ", "))
	}
	for i, s := range v.Services {
		v.Services[i] = strings.ToUpper(s)
		if !slices.Contains(DataprocServices, v.Services[i]) {
			return Errorf(CodeInvalid, "unknown Data Proc service %q: one of %s", s, strings.Join(DataprocServices, ", "))
		}
	}
	slices.Sort(v.Services)
	v.Services = slices.Compact(v.Services)
	has := func(s string) bool { return slices.Contains(v.Services, s) }
	for _, s := range needsYARN {
		if has(s) && !has("YARN") {
			return Errorf(CodeInvalid, "service %s runs on YARN: add YARN", s)
		}
	}
	if has("HBASE") && !(has("HDFS") && has("ZOOKEEPER")) {
		return Errorf(CodeInvalid, "service HBASE needs HDFS and ZOOKEEPER")
	}
	return v.checkGroups(has)
}

func (v *DataprocSpec) checkGroups(has func(string) bool) error {
	if len(v.HostGroups) == 0 || len(v.HostGroups) > maxHostGroups {
		return Errorf(CodeInvalid, "a Data Proc template has 1 to %d host groups, not %d", maxHostGroups, len(v.HostGroups))
	}
	count := map[string]int{}
	names := map[string]bool{}
	for _, g := range v.HostGroups {
		if err := ValidateName(g.Name); err != nil {
			return Errorf(CodeInvalid, "host group: %v", err)
		}
		if names[g.Name] {
			return Errorf(CodeInvalid, "host group %q is given twice", g.Name)
		}
		names[g.Name] = true
		switch {
		case g.Role != RoleMaster && g.Role != RoleData && g.Role != RoleCompute:
			return Errorf(CodeInvalid, "host group %q: invalid role %q: masternode, datanode or computenode", g.Name, g.Role)
		case !slices.Contains(DataprocPresets, g.Preset):
			return Errorf(CodeInvalid, "host group %q: unknown resource preset %q: one of %s", g.Name, g.Preset, strings.Join(DataprocPresets, ", "))
		case g.DiskGB < minDiskGB || g.DiskGB > maxDiskGB:
			return Errorf(CodeInvalid, "host group %q: a disk is %d to %d GB, not %d", g.Name, minDiskGB, maxDiskGB, g.DiskGB)
		case g.Hosts < 1 || g.Hosts > maxGroupHosts:
			return Errorf(CodeInvalid, "host group %q: a group has 1 to %d hosts, not %d", g.Name, maxGroupHosts, g.Hosts)
		case g.Role == RoleMaster && g.Hosts != 1:
			return Errorf(CodeInvalid, "host group %q: the masternode group has exactly 1 host, not %d", g.Name, g.Hosts)
		case g.Role == RoleData && !has("HDFS"):
			return Errorf(CodeInvalid, "host group %q: datanodes store HDFS: add HDFS", g.Name)
		case g.Role == RoleCompute && !has("YARN"):
			return Errorf(CodeInvalid, "host group %q: computenodes run YARN jobs: add YARN", g.Name)
		}
		count[g.Role]++
	}
	if count[RoleMaster] != 1 {
		return Errorf(CodeInvalid, "a Data Proc template has exactly one masternode group, not %d", count[RoleMaster])
	}
	if has("HDFS") && count[RoleData] == 0 {
		return Errorf(CodeInvalid, "HDFS needs a datanode group to store its data")
	}
	return nil
}

// Model kinds: a model trained in a project, or a checkpoint of one.
const (
	ModelKindModel      = "model"
	ModelKindCheckpoint = "checkpoint"
)

// maxProducedBy bounds what a model says produced it.
const maxProducedBy = 1024

// ModelSpec is a model or a checkpoint: what produced it. Its files are
// stored like a sealed dataset's (State.Datasets, under the model's ID).
type ModelSpec struct {
	Kind       string `json:"kind"`
	ProducedBy string `json:"produced_by"`
}

func (v *ModelSpec) normalize() error {
	if v.Kind != ModelKindModel && v.Kind != ModelKindCheckpoint {
		return Errorf(CodeInvalid, "invalid model kind %q: model or checkpoint", v.Kind)
	}
	switch {
	case strings.TrimSpace(v.ProducedBy) == "":
		return Errorf(CodeInvalid, "a model says what produced it (a notebook, a job, a training run): --produced-by")
	case len(v.ProducedBy) > maxProducedBy:
		return Errorf(CodeInvalid, "produced-by is %d bytes; the limit is %d", len(v.ProducedBy), maxProducedBy)
	case !utf8.ValidString(v.ProducedBy) || strings.ContainsRune(v.ProducedBy, 0):
		return Errorf(CodeInvalid, "produced-by is not text: NUL or invalid UTF-8")
	}
	return nil
}

// HoldsFiles reports whether resources of type typ hold files in
// State.Datasets: datasets, and models, stored alike.
func HoldsFiles(typ string) bool { return typ == TypeDataset || typ == TypeModel }
