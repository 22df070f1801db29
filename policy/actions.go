package policy

import (
	"fmt"
	"strings"
)

// Action is something a principal asks to do. The names (String/ParseAction)
// are what `sphere access check` takes; each action names the kinds of target
// it applies to, and the required role per SPEC.md §3/§4.
type Action uint8

const (
	ActNone Action = iota

	// System (target System).
	ActCreateOrg   // admin on System
	ActManageUsers // admin on System: user add/remove
	ActListUsers   // viewer on System

	// Organization.
	ActViewOrg         // any role on the org (primitive, datasphere or cloud)
	ActEditOrg         // editor on org: settings, delete
	ActCreateCommunity // editor on org (primitive) or communities.editor on org
	ActCreateCloud     // editor on org

	// Community.
	ActViewCommunity   // communities.viewer
	ActCreateProject   // communities.developer
	ActEditCommunity   // communities.editor: settings
	ActBindBilling     // communities.editor
	ActDeleteCommunity // communities.editor

	// Project.
	ActViewProject    // community-projects.viewer: project, settings, members, its resources' list
	ActRunCode        // community-projects.developer: mount, open files, exec
	ActCreateResource // community-projects.developer
	ActEditProject    // community-projects.editor
	ActDeleteProject  // community-projects.editor

	// Resource of a project. Target.Via = the project it is reached from when
	// that is not its own (a published resource): only view and use work there.
	ActViewResource      // community-projects.viewer
	ActUseResource       // developer: read data, read secret values
	ActEditResource      // developer: write a secret, write an initializing dataset, activate a connector
	ActDeleteResource    // developer
	ActPublishResource   // editor on the resource's project AND developer on Target.Via (a community, same org)
	ActUnpublishResource // same as publish

	// Cloud, folder, service account, folder resource. A user also needs
	// resource-manager.clouds.member (or owner) unless the role comes from a
	// system group (public access).
	ActViewCloudEntity   // viewer
	ActEditCloudEntity   // editor: create folders/resources in it, change, delete
	ActManageKeys        // editor on a service account
	ActCreateFolder      // editor on the cloud
	ActDeleteCloudEntity // editor

	// Access management on any entity (Target.Role = the role granted/revoked).
	// Admin of that level; granting or revoking resource-manager.clouds.owner needs owner.
	ActGrant
	ActRevoke
	ActViewAccess // viewer of the entity: list its bindings (members)

	actCount
)

var (
	systemOnly   = kinds(KindSystem)
	cloudTree    = kinds(KindCloud, KindFolder, KindServiceAccount, KindFolderResource)
	everyKind    = anyBindable | kinds(KindFolderResource)
	grantTargets = anyBindable
)

// actionDef describes an action: its name, the kinds it applies to, the
// capability it needs when that does not depend on the target's kind (zero
// otherwise, see need) and the rule as people read it.
type actionDef struct {
	name  string
	kinds kindSet
	need  capMask
	rule  string
}

var actionCatalog = [actCount]actionDef{
	ActCreateOrg:   {"create-org", systemOnly, capAdmin, "creating an organization needs admin on the system"},
	ActManageUsers: {"manage-users", systemOnly, capAdmin, "adding or removing users needs admin on the system"},
	ActListUsers:   {"list-users", systemOnly, capView, "listing users needs viewer on the system"},

	ActViewOrg:         {"view-org", kinds(KindOrg), capAny, "seeing an organization needs any role on it"},
	ActEditOrg:         {"edit-org", kinds(KindOrg), capEdit, "changing or deleting an organization needs editor on it"},
	ActCreateCommunity: {"create-community", kinds(KindOrg), capCommEdit, "creating a community needs editor (or datasphere.communities.editor) on the organization"},
	ActCreateCloud:     {"create-cloud", kinds(KindOrg), capEdit, "creating a cloud needs editor on the organization"},

	ActViewCommunity:   {"view-community", kinds(KindCommunity), capCommView, "viewing a community, its settings and members needs viewer on the community"},
	ActCreateProject:   {"create-project", kinds(KindCommunity), capCommDev, "creating a project needs developer on the community"},
	ActEditCommunity:   {"edit-community", kinds(KindCommunity), capCommEdit, "changing community settings needs editor on the community"},
	ActBindBilling:     {"bind-billing", kinds(KindCommunity), capCommEdit, "binding a billing account needs editor on the community"},
	ActDeleteCommunity: {"delete-community", kinds(KindCommunity), capCommEdit, "deleting a community needs editor on the community"},

	ActViewProject:    {"view-project", kinds(KindProject), capProjView, "viewing a project, its settings and members needs viewer on the project"},
	ActRunCode:        {"run-code", kinds(KindProject), capProjDev, "running code in a project (mount, open files, exec) needs developer on the project"},
	ActCreateResource: {"create-resource", kinds(KindProject), capProjDev, "creating resources needs developer on the project"},
	ActEditProject:    {"edit-project", kinds(KindProject), capProjEdit, "changing project settings needs editor on the project"},
	ActDeleteProject:  {"delete-project", kinds(KindProject), capProjEdit, "deleting a project needs editor on the project"},

	ActViewResource:      {"view-resource", kinds(KindResource), capProjView, "viewing a resource needs viewer on its project (or, published, on the project it is reached from)"},
	ActUseResource:       {"use-resource", kinds(KindResource), capProjDev, "using a resource needs developer on its project (or, published, on the project it is reached from)"},
	ActEditResource:      {"edit-resource", kinds(KindResource), capProjDev, "changing a resource needs developer on its own project; published copies are read-only"},
	ActDeleteResource:    {"delete-resource", kinds(KindResource), capProjDev, "deleting a resource needs developer on its own project"},
	ActPublishResource:   {"publish-resource", kinds(KindResource), 0, "publishing a resource needs editor on its project and developer on the target community of the same organization"},
	ActUnpublishResource: {"unpublish-resource", kinds(KindResource), 0, "unpublishing a resource needs editor on its project and developer on the community of the same organization"},

	ActViewCloudEntity:   {"view-cloud-entity", cloudTree, capCloudView, "viewing in a cloud needs viewer there, and a user also needs cloud membership"},
	ActEditCloudEntity:   {"edit-cloud-entity", cloudTree, capCloudEdit, "changing things in a cloud needs editor there, and a user also needs cloud membership"},
	ActManageKeys:        {"manage-keys", kinds(KindServiceAccount), capCloudEdit, "managing a service account's keys needs editor on that service account (or its folder or cloud), and a user also needs cloud membership"},
	ActCreateFolder:      {"create-folder", kinds(KindCloud), capCloudEdit, "creating a folder needs editor on the cloud, and a user also needs cloud membership"},
	ActDeleteCloudEntity: {"delete-cloud-entity", cloudTree, capCloudEdit, "deleting in a cloud needs editor there, and a user also needs cloud membership"},

	ActGrant:      {"grant", grantTargets, 0, "granting a role needs admin of that level; granting resource-manager.clouds.owner needs owner"},
	ActRevoke:     {"revoke", grantTargets, 0, "revoking a role needs admin of that level; revoking resource-manager.clouds.owner needs owner"},
	ActViewAccess: {"view-access", everyKind, 0, "listing who has access needs viewer of that level"},
}

func (a Action) valid() bool { return a > ActNone && a < actCount }

// String returns the action's kebab-case name, e.g. "run-code".
func (a Action) String() string {
	if a.valid() {
		return actionCatalog[a].name
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction returns the action with that name.
func ParseAction(name string) (Action, error) {
	for a := Action(1); a < actCount; a++ {
		if actionCatalog[a].name == name {
			return a, nil
		}
	}
	names := make([]string, 0, actCount-1)
	for _, a := range Actions() {
		names = append(names, a.String())
	}
	return ActNone, fmt.Errorf("%w %q: actions are %s", ErrUnknownAction, name, strings.Join(names, ", "))
}

// Actions returns every action in declaration order.
func Actions() []Action {
	as := make([]Action, 0, actCount-1)
	for a := Action(1); a < actCount; a++ {
		as = append(as, a)
	}
	return as
}

// AppliesTo reports whether the action can target an entity of kind k.
func (a Action) AppliesTo(k Kind) bool { return a.valid() && actionCatalog[a].kinds.has(k) }

// Rule is the rule the action follows, as people read it.
func (a Action) Rule() string {
	if a.valid() {
		return actionCatalog[a].rule
	}
	return ""
}
