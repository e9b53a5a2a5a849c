"""Roles (Django groups) and the site/trial scoping every queryset goes through.

Roles (created by migration ``edc.0002_roles``):

* ``site_staff``: enter data at their own sites;
* ``investigator``: site staff + sign-off, DLT/TI override, emergency unblinding;
* ``monitor``: read and raise queries, all sites of a trial;
* ``data_manager``: queries, locks, all sites of a trial;
* ``sponsor``: read-only, exports, no direct identifiers, blinded unless granted;
* ``statistician`` (``edc.0006_statistician_role``): the unblinded statistician, the only
  role that administers randomization lists (view, extend, allocation errors; ICH E9 2.3:
  the list is kept away from everyone else); read-only otherwise;
* ``admin``: everything (also Django superusers), except randomization administration.

Scope comes from :class:`subjects.models.Membership`: a user sees a trial's records at one
site (``site`` set) or at all its sites (``site`` empty).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q, QuerySet
from django.db.models.functions import JSONObject

from . import hooks
from .prepared import INTEGER_PLACEHOLDER, PreparedQuery

SITE_STAFF = "site_staff"
INVESTIGATOR = "investigator"
MONITOR = "monitor"
DATA_MANAGER = "data_manager"
SPONSOR = "sponsor"
STATISTICIAN = "statistician"
ADMIN = "admin"
ROLES = (SITE_STAFF, INVESTIGATOR, MONITOR, DATA_MANAGER, SPONSOR, STATISTICIAN, ADMIN)

#: Roles that may create or change clinical data at their sites.
DATA_ENTRY_ROLES = frozenset({SITE_STAFF, INVESTIGATOR})
#: Roles that only read (plus their own workflow actions: queries, exports).
READ_ONLY_ROLES = frozenset({MONITOR, SPONSOR, STATISTICIAN})


def roles_of(user) -> frozenset[str]:
    """The role names of a user (cached on the user object for the request); the first read
    also brings the memberships :func:`reach_of` needs, in the same query."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_trialdesk_roles", None)
    if cached is None:
        cached = frozenset(_read_roles_and_reach(user))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._trialdesk_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def is_admin(user) -> bool:
    return has_role(user, ADMIN)


def can_enter_data(user) -> bool:
    return is_admin(user) or has_role(user, *DATA_ENTRY_ROLES)


#: Fields no sponsor reads, wherever they appear (records and audit trails).
DIRECT_IDENTIFIERS = frozenset({"birth_date"})


def sees_birth_dates(user) -> bool:
    """Sponsors see no direct identifiers (ICH E6(R3): confidentiality of subjects' records):
    birth dates are withheld from them in the API, admin, audit trails and exports."""
    return is_admin(user) or not has_role(user, SPONSOR)


@dataclass(frozen=True)
class Reach:
    """What a user's active memberships reach: per trial id, ``None`` for every site or the
    site ids; the trials where the user has unblinded access; and which of the reached
    trials are blinded (their masking, read with the memberships)."""

    sites: dict[int, frozenset[int] | None]
    unblinded: frozenset[int]
    masked: frozenset[int] = frozenset()


#: Bumped whenever a membership is saved (:func:`membership_saved`), so that a reach cached on
#: a user object that outlives a request (a shell, a test client) is read again.
_generation = 0


def membership_saved(**kwargs) -> None:
    global _generation
    _generation += 1


def _membership_rows(user_ref):
    """The active memberships of a user (an id or ``OuterRef``) as the rows ``Reach`` is made
    of, with their trial's masking."""
    return hooks.membership_model().objects.filter(
        user=user_ref, retired_at__isnull=True).values_list(
            "trial_id", "site_id", "unblinded", "trial__masking")


def _remember_reach(user, rows, generation: int) -> Reach:
    sites: dict[int, set[int] | None] = {}
    unblinded, masked = set(), set()
    trial_model = hooks.trial_model()
    for trial_id, site_id, is_unblinded, masking in rows:
        if trial_model(pk=trial_id, masking=masking).is_blinded:
            masked.add(trial_id)
        if site_id is None:
            sites[trial_id] = None
        elif sites.setdefault(trial_id, set()) is not None:
            sites[trial_id].add(site_id)
        if is_unblinded:
            unblinded.add(trial_id)
    reach = Reach({t: None if s is None else frozenset(s) for t, s in sites.items()},
                  frozenset(unblinded), frozenset(masked))
    user.__dict__["_trialdesk_reach"] = (generation, reach)
    return reach


def roles_and_reach(user_ref) -> dict:
    """Annotations reading, with any query that has the user (``user_ref``: an ``OuterRef``
    to the user's id), the user's group names (``_roles``) and active memberships with
    their trials' masking (``_reach``); :func:`remember_roles_and_reach` caches them."""
    groups = get_user_model()._meta.get_field("groups").related_model
    return {
        "_roles": ArraySubquery(groups.objects.filter(user=user_ref).values("name")),
        "_reach": ArraySubquery(_membership_rows(user_ref).values(row=JSONObject(
            trial="trial_id", site="site_id", unblinded="unblinded",
            masking="trial__masking"))),
    }


def remember_roles_and_reach(user, names, rows, generation: int | None = None) -> None:
    """Cache on ``user``, for the request, what :func:`roles_and_reach` read (read at
    ``generation`` of the memberships), as :func:`roles_of` and :func:`reach_of` would."""
    _remember_reach(user, [(r["trial"], r["site"], r["unblinded"], r["masking"]) for r in rows],
                    _generation if generation is None else generation)
    found = frozenset(names)
    user._trialdesk_roles = found | {ADMIN} if user.is_superuser else found


#: The user (by id: only the id read) with :func:`roles_and_reach`, compiled once per process
#: (``edc.core.prepared``): every page of a session reads it (the admin's, the session API's),
#: and building and compiling its two subqueries cost several times running it.
_USER_ROLES_AND_REACH = PreparedQuery(
    lambda: get_user_model()._base_manager.filter(pk=INTEGER_PLACEHOLDER).only("pk").order_by()
    .annotate(**roles_and_reach(OuterRef("pk"))), (INTEGER_PLACEHOLDER,))


def _read_roles_and_reach(user) -> list[str]:
    """The user's group names; with them, in one query, the memberships if not cached."""
    cached = user.__dict__.get("_trialdesk_reach")
    if cached is not None and cached[0] == _generation:
        return list(user.groups.values_list("name", flat=True))
    generation = _generation
    found = _USER_ROLES_AND_REACH.run(user.pk, alias=user._state.db or "default")
    if not found:
        raise user._meta.model.DoesNotExist(f"no user {user.pk}")
    names, rows = found[0]._roles, found[0]._reach
    remember_roles_and_reach(user, names, rows, generation)
    return names


def reach_of(user) -> Reach:
    """The user's memberships with their trials' masking, read once (one query, or with the
    roles: :func:`roles_of`) and cached on the user for the request."""
    cached = user.__dict__.get("_trialdesk_reach")
    if cached is not None and cached[0] == _generation:
        return cached[1]
    return _remember_reach(user, _membership_rows(user), _generation)


def scope(queryset: QuerySet, user, *, trial: str = "trial", site: str | None = "site") -> QuerySet:
    """Restrict ``queryset`` to the records the user's memberships reach.

    ``trial`` and ``site`` are the lookups from the queryset's model to its trial and site
    (``site=None`` for records that belong to a trial as a whole). The memberships are read
    first (:func:`reach_of`) and the records filtered by their trial and site ids: plain
    ``IN`` lists on indexed foreign keys, which the planner estimates from its statistics
    (a correlated ``EXISTS`` on the membership table is estimated blind and made PostgreSQL
    join every record in scope before a page's top-N sort).
    """
    if is_admin(user):
        return queryset
    if not user or not user.is_authenticated:
        return queryset.none()
    return _scoped(queryset, reach_of(user).sites, trial, site)


def _scoped(queryset: QuerySet, reach: dict, trial: str, site: str | None) -> QuerySet:
    """``queryset`` limited to ``reach`` (trial id -> None for every site, or the site ids)."""
    if site is None:
        parts = [Q(**{f"{trial}__in": sorted(reach)})] if reach else []
    else:
        whole = sorted(t for t, sites in reach.items() if sites is None)
        parts = [Q(**{f"{trial}__in": whole})] if whole else []
        parts += [Q(**{trial: t, f"{site}__in": sorted(sites)})
                  for t, sites in sorted(reach.items()) if sites is not None]
    if not parts:
        return queryset.none()
    return queryset.filter(functools.reduce(operator.or_, parts))


#: The shapes of :func:`scope_shape` that filter nothing (an admin) or find nothing.
UNSCOPED, NOTHING = "unscoped", "nothing"


def scope_shape(user) -> tuple[object, tuple[int, ...]]:
    """The user's scope as (shape, ids), for a query compiled once per shape
    (``edc.core.prepared.PreparedShapes``) whose ids are parameters: ``shape`` is what the
    SQL of :func:`scope`'s filter depends on (how many trials are reached at every site, and
    how many sites of each other trial), ``ids`` the trial and site ids in the order
    :func:`scoped_as` takes them. :data:`UNSCOPED` for an admin (no filter), :data:`NOTHING`
    for a user who reaches nothing (no query finds anything)."""
    if is_admin(user):
        return UNSCOPED, ()
    if not user or not user.is_authenticated:
        return NOTHING, ()
    reach = reach_of(user).sites
    if not reach:
        return NOTHING, ()
    whole = sorted(t for t, sites in reach.items() if sites is None)
    partial = [(t, sorted(sites)) for t, sites in sorted(reach.items()) if sites is not None]
    return ((len(whole), tuple(len(sites) for _, sites in partial)),
            (*whole, *(pk for t, sites in partial for pk in (t, *sites))))


def scoped_as(queryset: QuerySet, shape, ids, *, trial: str = "trial",
              site: str | None = "site") -> QuerySet:
    """:func:`scope`'s filter for a user whose scope is ``shape`` and ``ids``
    (:func:`scope_shape`; ``ids`` may be placeholders of a compiled query): the same rule."""
    if shape == UNSCOPED:
        return queryset
    if shape == NOTHING:
        return queryset.none()
    whole, partial = shape
    ids = list(ids)
    if len(ids) != whole + len(partial) + sum(partial):
        raise ValueError("ids do not match the scope's shape")
    reach: dict = dict.fromkeys(ids[:whole])
    at = whole
    for count in partial:
        reach[ids[at]] = frozenset(ids[at + 1:at + 1 + count])
        at += 1 + count
    return _scoped(queryset, reach, trial, site)


def administers_randomization(user, trial) -> bool:
    """The unblinded statistician of ``trial``: the role, and unblinded access to the trial
    on a membership. Nobody else (admins included) views or changes its allocation lists."""
    return has_role(user, STATISTICIAN) and hooks.membership_model().objects.filter(
        user=user, trial=trial, unblinded=True, retired_at__isnull=True).exists()


def can_see_unblinded(user, trial) -> bool:
    """Whether the user may see the true arm of subjects in a blinded trial.

    Unblinded access is granted per trial on the membership; admins have it.
    """
    if is_admin(user):
        return True
    return getattr(trial, "pk", trial) in reach_of(user).unblinded


def _blinding_known(user, trial_id: int) -> bool | None:
    """Whether ``user`` is blinded to the trial, when known without a query: an admin never
    is; a trial of the user's memberships has its masking in :func:`reach_of`."""
    if is_admin(user):
        return False
    if not getattr(user, "is_authenticated", False):
        return None
    reach = reach_of(user)
    if trial_id not in reach.sites:
        return None
    return trial_id in reach.masked and trial_id not in reach.unblinded


def blinded_to(user, trial) -> bool:
    """Whether ``user`` must not see the true treatment in ``trial`` (a Trial or its id, so
    that serializers need not load it; cached on the user for the request)."""
    trial_id = getattr(trial, "pk", trial)
    cache = user.__dict__.setdefault("_trialdesk_blinded", {})
    if trial_id not in cache:
        known = _blinding_known(user, trial_id)
        if known is not None:
            cache[trial_id] = known
            return known
        if not hasattr(trial, "masking"):
            trial = hooks.trial_model().objects.only("pk", "masking").get(pk=trial_id)
        cache[trial_id] = trial.is_blinded and not can_see_unblinded(user, trial)
    return cache[trial_id]


def blinded_trials(user, trial_ids) -> list[int]:
    """The ids among ``trial_ids`` that ``user`` is blinded to (:func:`blinded_to`), with the
    masking of every trial neither cached nor known from the memberships read in one query."""
    trial_ids = list(trial_ids)
    cache = user.__dict__.setdefault("_trialdesk_blinded", {})
    missing = [pk for pk in trial_ids if pk not in cache
               and _blinding_known(user, pk) is None]
    if missing:
        for trial in hooks.trial_model().objects.only("pk", "masking").filter(pk__in=missing):
            blinded_to(user, trial)
    return [pk for pk in trial_ids if blinded_to(user, pk)]


def reveals_allocation(model, lookup: str) -> bool:
    return hooks.blinding_policy().reveals_allocation(model, lookup)


def scoped_choices(model, user):
    """The rows of ``model`` a user may pick in a dropdown, or None for unscoped models.

    A model is scoped by declaring ``choice_scope`` (the ``trial`` and ``site`` lookups of
    :func:`scope`) and, for its label, ``choice_related``."""
    lookups = getattr(model, "choice_scope", None)
    if lookups is None:
        return None
    queryset = model.objects.select_related(*getattr(model, "choice_related", ()))
    return scope(queryset, user, **lookups)
