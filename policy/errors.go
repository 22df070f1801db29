package policy

import "errors"

// Errors returned by the Index. Returned errors wrap one of these (test with
// errors.Is) and their text names the rule that was broken and the entities
// involved, ready to show to a person.
var (
	// ErrUnknownRole: the role is not in the catalog.
	ErrUnknownRole = errors.New("unknown role")
	// ErrUnknownAction: the action name is not one of Actions().
	ErrUnknownAction = errors.New("unknown action")
	// ErrRoleNotBindable: the role exists but cannot be bound on that kind of
	// entity (communities.* on a project, clouds.* on a folder, ...).
	ErrRoleNotBindable = errors.New("role not bindable here")
	// ErrNotBindable: the entity accepts no bindings at all (folder resources
	// inherit from their folder, then the cloud).
	ErrNotBindable = errors.New("entity accepts no bindings")
	// ErrCrossOrg: a binding or publication would cross organizations.
	ErrCrossOrg = errors.New("crosses organizations")
	// ErrLastOwner: the change would leave a cloud without an owner.
	ErrLastOwner = errors.New("last owner of a cloud")
	// ErrNoSuchEntity: no entity with that ID.
	ErrNoSuchEntity = errors.New("no such entity")
	// ErrNoSuchPrincipal: no principal with that ID.
	ErrNoSuchPrincipal = errors.New("no such principal")
	// ErrNoSuchBinding: the principal does not hold that role there.
	ErrNoSuchBinding = errors.New("no such binding")
	// ErrBadNesting: the entity's kind cannot sit under its parent's kind, or
	// a re-put tries to change an entity's kind or parent.
	ErrBadNesting = errors.New("bad nesting")
	// ErrHasChildren: an entity with children cannot be removed.
	ErrHasChildren = errors.New("entity has children")
	// ErrWrongKind: an entity or principal of another kind was expected.
	ErrWrongKind = errors.New("wrong kind")
	// ErrNotPublished: unpublishing something that is not published there.
	ErrNotPublished = errors.New("not published")
	// ErrIDInUse: the ID already names something else (entities and
	// principals share one ID space; only a service account is both).
	ErrIDInUse = errors.New("id in use")
	// ErrReserved: well-known IDs below FirstAssigned cannot be created,
	// changed in kind, or removed.
	ErrReserved = errors.New("reserved id")
)

// ruleError carries a sentinel for errors.Is and a full sentence for people,
// so messages read "cannot …: a cloud must keep at least one owner" rather
// than repeating the sentinel's short text.
type ruleError struct {
	err error
	msg string
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.err }
