package vfs

import (
	"context"
	"errors"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// Kinds of resources, as Store takes them and as the tree shows them: each
// kind has one directory at the root of the mount.
const (
	KindDataset          = "dataset"           // datasets/NAME/
	KindSecret           = "secret"            // secrets/NAME
	KindS3               = "s3"                // s3/NAME/
	KindModel            = "model"             // models/NAME/: files, served like a dataset's, never written here
	KindImage            = "image"             // images/NAME.json: a descriptor
	KindNode             = "node"              // nodes/NAME.json
	KindAlias            = "alias"             // aliases/NAME.json
	KindDataprocTemplate = "dataproc-template" // dataproc-templates/NAME.json
)

// isDescriptor reports whether resources of kind are shown as one
// read-only file each, their descriptor (Resource.Descriptor).
func isDescriptor(kind string) bool {
	switch kind {
	case KindImage, KindNode, KindAlias, KindDataprocTemplate:
		return true
	}
	return false
}

// readOnlyKind reports whether the mount never changes resources of kind,
// whoever asks: descriptors, and models, whose files come with `sphere
// model create`. Their directories refuse every change with ErrReadOnly.
func readOnlyKind(kind string) bool { return isDescriptor(kind) || kind == KindModel }

// readOnlyHere reports whether res is read-only in this mount whoever asks:
// published into the project, or of a read-only kind.
func readOnlyHere(res Resource) bool { return res.Published || readOnlyKind(res.Kind) }

// Resource is a resource as the tree needs it. The daemon fills it from the
// replicated state; it never carries a secret's value.
type Resource struct {
	ID        policy.ID
	Kind      string    // one of the Kind constants
	Name      string    // unique among the resources of its kind visible in a project
	Project   policy.ID // the owning project
	Published bool      // reached through a publication into this project's community (read-only here)
	Size      int64     // secrets: plaintext length; others 0 for now
	Modified  time.Time
	// Active: an S3 connector that is activated. Only active connectors
	// are shown (s3/NAME/); the tree treats an inactive one as absent.
	Active bool
	// Descriptor is the content of a descriptor kind's file: JSON, no
	// secret in it.
	Descriptor []byte
}

// Store is what the tree needs from the daemon. The daemon implements it over
// its replicated state; the tree never reaches the state any other way.
//
// Errors: a Store returns errors that wrap the error values of this package
// (errors.Is(err, ErrNotFound), ...) whenever one of them says what happened,
// so that the caller gets the right errno; anything else becomes EIO and a
// log line, so error texts must never contain a secret's value. Calls that
// take a context must return when it is done (a request the caller
// interrupted, or the tree's own deadline, see storeTimeout).
type Store interface {
	// Principal maps a uid to its principal; unregistered uids are
	// policy.Anonymous. name is for audit.
	Principal(uid uint32) (id policy.ID, name string)
	// Decide is policy's decision, taken on the current state: the tree
	// calls it on every operation and never remembers an answer.
	Decide(p policy.ID, a policy.Action, t policy.Target) policy.Decision
	// Resources lists the resources of kind visible in project: its own and
	// those published to its community, sorted by name.
	Resources(project policy.ID, kind string) []Resource
	// Resource finds one of the resources Resources would list, by name.
	Resource(project policy.ID, kind, name string) (Resource, bool)
	// ReadSecret returns the plaintext of secret in a slice of its own: the
	// tree zeroes it once it has been copied to the caller.
	ReadSecret(ctx context.Context, p policy.ID, secret policy.ID) ([]byte, error)
	// WriteSecret creates or replaces; DeleteResource/CreateResource act as
	// the CLI's same commands (the daemon re-checks policy). WriteSecret must
	// not keep value past the call: the tree reuses and zeroes it.
	WriteSecret(ctx context.Context, p policy.ID, project policy.ID, name string, value []byte) error
	CreateResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error
	DeleteResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error
}

// Auditor receives one Event per decision on a secret (allowed or denied) and
// per denial anywhere in the tree. Record is called on the request's path, so
// it must not block for long.
type Auditor interface {
	Record(Event)
}

// Event is one audit record. It never holds a secret's value: only who asked,
// what, where, and what policy answered.
type Event struct {
	Time        time.Time // UTC
	UID         uint32    // the caller's uid as the kernel reported it
	Principal   string    // the principal's name, from Store.Principal
	PrincipalID policy.ID
	Op          string // the filesystem operation: "open", "read", "lookup", ...
	Action      string // the policy action decided, e.g. "use-resource"
	Path        string // inside the mount, e.g. "secrets/TOKEN"; "." is the root
	Allowed     bool
	Binding     string // the binding that allowed it (empty when denied)
	Missing     string // what a denied caller lacks (empty when allowed)
}

// The errors of the tree. Every operation returns one of these (possibly
// wrapped, with errors.Is to test) or an unexpected error from the Store; the
// FUSE adapter turns each into one errno, given here.
var (
	// ErrDenied: policy refused the caller the action (EACCES).
	ErrDenied = errors.New("permission denied")
	// ErrReadOnly: a write to a place that is never writable from this
	// mount, whoever asks: a resource published into the project (EROFS).
	ErrReadOnly = errors.New("read-only")
	// ErrNotFound: no such entry, or one the caller may not see (ENOENT).
	ErrNotFound = errors.New("not found")
	// ErrExists: the name is taken (EEXIST).
	ErrExists = errors.New("already exists")
	// ErrInvalidName: the name breaks the naming rules of its kind (EINVAL).
	ErrInvalidName = errors.New("invalid name")
	// ErrTooLarge: a secret's value would exceed MaxSecretSize (EFBIG).
	ErrTooLarge = errors.New("secret value too large")
	// ErrNotSupported: an operation the tree does not offer on this kind of
	// node, such as extended attributes (ENOTSUP).
	ErrNotSupported = errors.New("not supported")
	// ErrNotPermitted: an operation the tree never allows, whatever the
	// caller's roles: changing modes or owners, hard and symbolic links,
	// device nodes, creating or removing the fixed directories (EPERM).
	ErrNotPermitted = errors.New("operation not permitted")
	// ErrCrossDevice: rename, which the tree does not do in place; like
	// between two filesystems, mv then copies and deletes, each step under
	// the caller's rights (EXDEV).
	ErrCrossDevice = errors.New("rename not supported: copy and delete instead")
	// ErrNotDir: a directory operation on a file (ENOTDIR).
	ErrNotDir = errors.New("not a directory")
	// ErrIsDir: a file operation on a directory, such as unlink (EISDIR).
	ErrIsDir = errors.New("is a directory")
	// ErrNotEmpty: removing a directory that holds something (ENOTEMPTY).
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNoSpace: a write would take a dataset past its size limit, or its
	// project past its storage limit; or a new resource would exceed the
	// project's limit on their number (ENOSPC). The tree refuses a write
	// itself; the daemon refuses a commit that would, in case several
	// writers raced.
	ErrNoSpace = errors.New("dataset size limit reached")
	// ErrUnavailable: the place the data lives (MinIO, the blob store) did
	// not answer, or not in time (EIO, with a log line saying why).
	ErrUnavailable = errors.New("storage unavailable")

	// errUnlinked: datasetNode found a file only through the handle open on
	// it; never returned to the adapter.
	errUnlinked = errors.New("unlinked")
)
