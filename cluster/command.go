package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// CommandVersion is the envelope version this build writes and reads. A node
// that meets a newer version panics instead of guessing (see DESIGN.md).
const CommandVersion = 1

// CommandType names what a command does.
type CommandType string

const (
	CmdBootstrap    CommandType = "bootstrap"
	CmdAddUser      CommandType = "user.add"
	CmdRemoveUser   CommandType = "user.remove"
	CmdSetUserToken CommandType = "user.token"
	CmdSetUser      CommandType = "user.set"
	CmdCreate       CommandType = "entity.create"
	CmdUpdate       CommandType = "entity.update"
	CmdDelete       CommandType = "entity.delete"
	CmdGrant        CommandType = "role.grant"
	CmdRevoke       CommandType = "role.revoke"
	CmdPublish      CommandType = "publish"
	CmdUnpublish    CommandType = "unpublish"
	CmdNoop         CommandType = "noop"
)

// Command is the envelope of every Raft log entry. Actor and Time are set by
// the node that proposes it, so applying it is deterministic everywhere.
type Command struct {
	Version int         `json:"v"`
	Type    CommandType `json:"type"`
	Actor   policy.ID   `json:"actor"`
	Time    time.Time   `json:"time"`
	// Request identifies one request across retries: a command committed
	// twice under the same id applies once (see requests.go).
	Request string          `json:"req,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// NewCommand wraps a payload in an envelope.
func NewCommand(t CommandType, actor policy.ID, payload any) (*Command, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return &Command{Version: CommandVersion, Type: t, Actor: actor, Time: time.Now().UTC(), Payload: raw}, nil
}

// Payloads, one per command type.
type (
	Bootstrap struct {
		KeyCheck []byte `json:"key_check"`
	}
	AddUser struct {
		Name        string `json:"name"`
		UID         uint32 `json:"uid"`
		Description string `json:"description,omitempty"`
	}
	RemoveUser struct {
		Name string `json:"name"`
	}
	SetUserToken struct {
		Name string `json:"name"`
		Hash []byte `json:"hash"`
	}
	// SetUser changes what it holds; nil fields stay.
	SetUser struct {
		Name        string  `json:"name"`
		UID         *uint32 `json:"uid,omitempty"`
		Description *string `json:"description,omitempty"`
	}
	Create struct {
		Kind        policy.Kind       `json:"kind"`
		Type        string            `json:"type,omitempty"`
		Parent      policy.ID         `json:"parent"`
		Name        string            `json:"name"`
		Description string            `json:"description,omitempty"`
		Settings    map[string]string `json:"settings,omitempty"`
		Sealed      []byte            `json:"sealed,omitempty"`
		SecretLen   int               `json:"secret_len,omitempty"`
		DataKey     []byte            `json:"data_key,omitempty"`
		// Replace turns a create of an existing secret into an update of its
		// value: writing secrets/NAME creates or replaces.
		Replace bool `json:"replace,omitempty"`
		// Spec is the descriptor of a resource type that has one (spec.go).
		Spec json.RawMessage `json:"spec,omitempty"`
	}
	Update struct {
		ID          policy.ID         `json:"id"`
		Description *string           `json:"description,omitempty"`
		Settings    map[string]string `json:"settings,omitempty"`
		Unset       []string          `json:"unset,omitempty"`
		// Spec replaces the descriptor fields it holds; the others stay.
		Spec json.RawMessage `json:"spec,omitempty"`
	}
	Delete struct {
		ID policy.ID `json:"id"`
	}
	BindingRecord struct {
		Principal policy.ID `json:"principal"`
		Role      string    `json:"role"`
		On        policy.ID `json:"on"`
	}
	Publish struct {
		Resource  policy.ID `json:"resource"`
		Community policy.ID `json:"community"`
	}
)

// Response is what applying a command returns. Ordinary failures (denied,
// not found, conflict) travel here, never as a panic; callers must check Err.
type Response struct {
	ID   policy.ID `json:"id,omitempty"`
	Code ErrCode   `json:"code,omitempty"`
	Msg  string    `json:"msg,omitempty"`
}

// Err turns a failed response back into an error that matches the package's
// sentinel with errors.Is.
func (r Response) Err() error {
	if r.Code == "" {
		return nil
	}
	return &Error{Code: r.Code, Msg: r.Msg}
}

// ErrCode classifies an error so it survives the trip through Raft, the API
// and the CLI (exit codes, HTTP status) without parsing messages.
type ErrCode string

const (
	CodeInvalid  ErrCode = "invalid"
	CodeDenied   ErrCode = "denied"
	CodeNotFound ErrCode = "not_found"
	CodeExists   ErrCode = "exists"
	CodeConflict ErrCode = "conflict"
	CodeNoSpace  ErrCode = "no_space"  // a size or a project's limit would be exceeded
	CodeReadOnly ErrCode = "read_only" // a sealed dataset, a read-only connector
	CodeInternal ErrCode = "internal"
)

// Error is an error with a code.
type Error struct {
	Code ErrCode
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is lets errors.Is(err, ErrDenied) match any Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Msg == ""
}

// The package's error values; each Error carries a message naming the rule.
var (
	// ErrInvalid is bad input: a name, a path, a flag.
	ErrInvalid = &Error{Code: CodeInvalid}
	// ErrDenied is a policy refusal.
	ErrDenied = &Error{Code: CodeDenied}
	// ErrNotFound is returned for what does not exist, and for what the
	// caller may not see: the two are indistinguishable on purpose.
	ErrNotFound = &Error{Code: CodeNotFound}
	// ErrExists is a name already taken among siblings.
	ErrExists = &Error{Code: CodeExists}
	// ErrConflict is a change the current state refuses (children left, last owner).
	ErrConflict = &Error{Code: CodeConflict}
	// ErrInvalidName and ErrInvalidRef are bad names and references.
	ErrInvalidName = &Error{Code: CodeInvalid, Msg: "invalid name"}
	ErrInvalidRef  = &Error{Code: CodeInvalid, Msg: "invalid reference"}
	// ErrNotLeader is returned when a write reaches a node that cannot commit it.
	ErrNotLeader = errors.New("this node is not the leader")
)

// Errorf builds an Error with a code; ToResponse/FromError carry it across.
func Errorf(code ErrCode, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf classifies any error.
func CodeOf(err error) ErrCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func notFound(r Ref, depth int) error {
	shown := Ref{Kind: r.Kind, Path: r.Path[:depth+1]}
	return Errorf(CodeNotFound, "%s not found", shown)
}
