"""Who may do what: the roles, the permissions, and the matrix between them.

Every route of the web app declares the one permission it needs (see
``dxassist.web.deps.allow``) or is listed in :data:`PUBLIC_PATHS`; a test enumerates the
app's routes so that a new route without either fails CI. The matrix is documented in
docs/permissions.md (generated from :data:`ROLE_PERMISSIONS` by that test's helper).
"""

from __future__ import annotations

from enum import StrEnum

from dxassist.store.models import Role


class Permission(StrEnum):
    #: the worklist, a study's metadata, AI read, images, heatmaps and FHIR report
    #: (patients appear only as keyed pseudonyms with age and sex)
    STUDIES_READ = "studies:read"
    #: upload radiographs
    STUDIES_UPLOAD = "studies:upload"
    #: confirm or correct a read; retry a failed analysis
    STUDIES_REVIEW = "studies:review"
    #: send a study's results to the PACS again now
    RESULTS_RESEND = "results:resend"
    #: a study's FHIR results under the hospital's own identifiers (via the link store):
    #: for the EHR interface's token, not for people
    RESULTS_IDENTIFIED = "results:identified"
    #: release a study held for possibly burned-in identifying text, after looking at it
    STUDIES_RELEASE = "studies:release"
    #: the reviewed studies as a training manifest (labels, no identifiers)
    EXPORT_TRAINING = "export:training"
    #: COVID-19 outcome risk from labs entered by the user
    PROGNOSIS = "prognosis:use"
    #: the symptom-based diagnostic assistant
    ASSIST = "assist:use"
    #: the audit trail
    AUDIT_READ = "audit:read"
    #: one's own account: who am I, log out
    SELF = "self"


_CLINICAL = {Permission.PROGNOSIS, Permission.ASSIST, Permission.SELF}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.RADIOLOGIST: frozenset(
        {
            Permission.STUDIES_READ,
            Permission.STUDIES_UPLOAD,
            Permission.STUDIES_REVIEW,
            *_CLINICAL,
        }
    ),
    # clinicians see results (read-only) and use the clinical tools
    Role.CLINICIAN: frozenset({Permission.STUDIES_READ, *_CLINICAL}),
    # researchers see de-identified data only: no study pages and not labels.csv (it holds
    # study ids and stored-file paths); an admin makes them `dxassist export --deidentified`
    Role.RESEARCHER: frozenset({Permission.ASSIST, Permission.SELF}),
}

#: Routes anyone may reach without signing in (exact paths, or prefixes ending in /).
PUBLIC_PATHS: frozenset[str] = frozenset(
    {"/login", "/logout", "/healthz", "/readyz", "/openapi.json", "/static/"}
)


def is_public(path: str) -> bool:
    """Whether `path` (a route's path template) is reachable without signing in."""
    return path in PUBLIC_PATHS or any(path.startswith(p) for p in PUBLIC_PATHS if p.endswith("/"))


def allowed(role: Role, permission: Permission) -> bool:
    """Whether `role` has `permission`."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def roles_with(permission: Permission) -> list[Role]:
    """The roles that have `permission`, in the order of the Role enum."""
    return [role for role in Role if allowed(role, permission)]
