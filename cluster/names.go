package cluster

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxNameLen bounds every name: DNS-label length, so names also work as
// hostnames and path components everywhere sphere shows them.
const maxNameLen = 63

// ValidateName checks an entity name against SPEC.md §1: 1–63 characters of
// a-z 0-9 -, starting with a letter. The error names the rule that failed.
func ValidateName(name string) error {
	if err := checkCommon(name); err != nil {
		return err
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%w: %q must start with a lowercase letter", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: %q contains %s; names use only a-z, 0-9 and -", ErrInvalidName, name, describeChar(name[i:]))
		}
	}
	return nil
}

// ValidateSecretName checks a secret's name: 1–63 characters of A-Z a-z 0-9 _,
// starting with a letter or _, so that it works as an environment variable.
func ValidateSecretName(name string) error {
	if err := checkCommon(name); err != nil {
		return err
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return fmt.Errorf("%w: secret name %q must start with a letter or _", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: secret name %q contains %s; secret names use only A-Z, a-z, 0-9 and _", ErrInvalidName, name, describeChar(name[i:]))
		}
	}
	return nil
}

func checkCommon(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: a name must not be empty", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not a name", ErrInvalidName, name)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: name is %d characters long; the limit is %d", ErrInvalidName, len(name), maxNameLen)
	}
	return nil
}

// describeChar names the first offending character without echoing control
// bytes or invalid UTF-8 back to a terminal.
func describeChar(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	switch {
	case r == 0:
		return "a NUL byte"
	case r == '/':
		return `"/"`
	case r == utf8.RuneError:
		return "invalid UTF-8"
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf("control character %U", r)
	default:
		return fmt.Sprintf("%q", r)
	}
}

// RefKind is the KIND in a KIND:PATH reference.
type RefKind string

const (
	RefOrg            RefKind = "org"
	RefCommunity      RefKind = "community"
	RefProject        RefKind = "project"
	RefResource       RefKind = "resource"
	RefCloud          RefKind = "cloud"
	RefFolder         RefKind = "folder"
	RefServiceAccount RefKind = "service-account"
	RefSystem         RefKind = "system"
)

// refDepth is how many path segments each kind of reference has.
var refDepth = map[RefKind]int{
	RefSystem:         0,
	RefOrg:            1,
	RefCommunity:      2,
	RefProject:        3,
	RefResource:       5, // ORG/C/P/TYPE/NAME, the path it has in a mount
	RefCloud:          2,
	RefFolder:         3,
	RefServiceAccount: 4,
}

// ResourceTypes maps the folder a resource has in a mount to its type.
var ResourceTypes = map[string]string{
	"secrets":            TypeSecret,
	"datasets":           TypeDataset,
	"s3":                 TypeS3,
	"images":             TypeImage,
	"nodes":              TypeNode,
	"aliases":            TypeAlias,
	"dataproc-templates": TypeDataprocTemplate,
	"models":             TypeModel,
}

// resourceFolders lists the folders of ResourceTypes, for messages.
var resourceFolders = strings.Join(keys(ResourceTypes), ", ")

// Resource types. The last five carry a descriptor (Entity.Spec, spec.go).
const (
	TypeSecret           = "secret"
	TypeDataset          = "dataset"
	TypeS3               = "s3"
	TypeImage            = "image"
	TypeNode             = "node"
	TypeAlias            = "alias"
	TypeDataprocTemplate = "dataproc-template"
	TypeModel            = "model"
)

// Ref is a parsed KIND:PATH reference.
type Ref struct {
	Kind RefKind
	Path []string
}

func (r Ref) String() string {
	return string(r.Kind) + ":" + strings.Join(r.Path, "/")
}

// ParseRef parses KIND:PATH, validating every segment's name.
func ParseRef(s string) (Ref, error) {
	kind, path, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, fmt.Errorf("%w: %q is not KIND:PATH (KIND is one of org, community, project, resource, cloud, folder, service-account)", ErrInvalidRef, s)
	}
	return ParsePath(RefKind(kind), path)
}

// ParsePath parses a slash-separated path of the given kind.
func ParsePath(kind RefKind, path string) (Ref, error) {
	depth, ok := refDepth[kind]
	if !ok {
		return Ref{}, fmt.Errorf("%w: unknown kind %q (one of org, community, project, resource, cloud, folder, service-account)", ErrInvalidRef, kind)
	}
	var segs []string
	if path != "" {
		segs = strings.Split(path, "/")
	}
	if len(segs) != depth {
		return Ref{}, fmt.Errorf("%w: a %s path has %d parts (%s), %q has %d", ErrInvalidRef, kind, depth, refShape[kind], path, len(segs))
	}
	for i, seg := range segs {
		var err error
		switch {
		case kind == RefResource && i == 3:
			if _, ok := ResourceTypes[seg]; !ok {
				err = fmt.Errorf("%w: %q is not a resource folder (%s)", ErrInvalidRef, seg, resourceFolders)
			}
		case kind == RefResource && i == 4 && segs[3] == "secrets":
			err = ValidateSecretName(seg)
		default:
			err = ValidateName(seg)
		}
		if err != nil {
			return Ref{}, err
		}
	}
	return Ref{Kind: kind, Path: segs}, nil
}

var refShape = map[RefKind]string{
	RefSystem:         "none",
	RefOrg:            "ORG",
	RefCommunity:      "ORG/COMMUNITY",
	RefProject:        "ORG/COMMUNITY/PROJECT",
	RefResource:       "ORG/COMMUNITY/PROJECT/FOLDER/NAME (FOLDER: " + resourceFolders + ")",
	RefCloud:          "ORG/CLOUD",
	RefFolder:         "ORG/CLOUD/FOLDER",
	RefServiceAccount: "ORG/CLOUD/FOLDER/NAME",
}
