"""How to exercise each operation of the OpenAPI document as tenant B against tenant A.

Every operation the live document lists must have an entry here, and every entry must match an
operation: a new route fails the suite until someone teaches it (see the README's "How isolation
works"). What an entry says:

- ``body``/``content``: a valid request body for that caller (JSON, or raw bytes + media type);
- ``variants``: query strings to try, each with the statuses each caller must get (omitted
  callers, or ``expect=None``: any status, as long as nothing of A's leaks);
- ``headers``: extra headers (e.g. If-Match);
- ``own``: for lists, a marker of B's own data that B's callers must see (a positive control:
  an empty or failing list would otherwise pass the no-leak check vacuously);
- ``ends_session``: the call ends the caller's session; the suite signs the caller in again;
- ``token``: the operation takes an access token (the OpenAPI document must agree): A's token
  presented for B is then refused.

Routes with path parameters need no expectations: A's ids must answer 404, never a 403 that
an unknown id would not also get (see test_routes.py). A path parameter's value comes from
``Seeded.path_ids`` by name; a new kind of id must be seeded there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from tests.isolation.battlefield import (
    ANONYMOUS,
    ATTACKER,
    VICTIM,
    Caller,
    Seeded,
    import_csv,
    tenant_rows,
    unique,
)

Statuses = Mapping[str, frozenset[int]]


def statuses(
    *,
    admin: set[int] | None = None,
    seller: set[int] | None = None,
    shopper: set[int] | None = None,
    anonymous: set[int] | None = None,
    signed_in: set[int] | None = None,
) -> Statuses:
    out: dict[str, frozenset[int]] = {}
    for name, value in (
        ("admin", admin or signed_in),
        ("seller", seller or signed_in),
        ("shopper", shopper or signed_in),
        (ANONYMOUS, anonymous),
    ):
        if value is not None:
            out[name] = frozenset(value)
    return out


@dataclass(frozen=True)
class Variant:
    query: Mapping[str, str] = field(default_factory=dict)
    expect: Statuses | None = None
    own: bool = False  # B's own marker must be in the answer for callers that get a 200


Body = Callable[[Seeded, Caller], object]
Content = Callable[[Seeded, Caller], tuple[bytes, str]]
After = Callable[[httpx.AsyncClient, Caller, httpx.Response], Awaitable[None]]


@dataclass(frozen=True)
class Teaching:
    token: bool
    body: Body | None = None
    content: Content | None = None
    variants: Callable[[Seeded], list[Variant]] = lambda seeded: [Variant()]
    headers: Mapping[str, str] = field(default_factory=dict)
    own: Callable[[Seeded, Caller], str] | None = None
    ends_session: bool = False
    after: After | None = None
    # Anything more to judge in an answer: a failure message, or None.
    check: Callable[[Seeded, Caller, httpx.Response], str | None] | None = None


def _summary_counts_only_b(seeded: Seeded, response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    counted = sum(response.json()["by_state"].values())
    expected = len(tenant_rows(seeded.owner, seeded.attacker.id)["jobs"])
    return None if counted == expected else f"counts {counted} jobs, B has {expected}"


async def _adopt_new_password(
    client: httpx.AsyncClient, caller: Caller, response: httpx.Response
) -> None:
    if response.status_code == 200 and caller.account is not None:
        caller.password = _next_password(caller)
        caller.account.access_token = response.json()["access_token"]
        caller.account.refresh_token = response.json()["refresh_token"]


def _next_password(caller: Caller) -> str:
    return f"{caller.password[:40]} quartz meadow falcon"


AUTHED = statuses(anonymous={401})
ADMIN_ONLY = statuses(admin={200}, seller={403}, shopper={403}, anonymous={401})
BAD_CURSOR = {422}

TEACHINGS: dict[str, Teaching] = {
    # --- auth --------------------------------------------------------------------------------
    "POST /api/v1/auth/register": Teaching(
        token=False,
        # A's address (made unique per call) in B's marketplace: a new, separate account.
        body=lambda s, c: {
            "email": f"{unique(c.name)}-{s.victim['shopper'].email}",
            "password": "a long and unusual passphrase",
            "display_name": "Intruder",
        },
        variants=lambda s: [Variant(expect=statuses(signed_in={201}, anonymous={201}))],
    ),
    "POST /api/v1/auth/login": Teaching(
        token=False,
        body=lambda s, c: {"email": s.victim["seller"].email, "password": c.password},
        variants=lambda s: [Variant(expect=statuses(signed_in={401}, anonymous={401}))],
    ),
    "POST /api/v1/auth/refresh": Teaching(
        token=False,
        # A's refresh token presented in B: refused, and (the snapshot shows) not used up.
        body=lambda s, c: {"refresh_token": s.refresh_token},
        variants=lambda s: [Variant(expect=statuses(signed_in={401}, anonymous={401}))],
    ),
    "POST /api/v1/auth/logout": Teaching(
        token=True,
        variants=lambda s: [Variant(expect=statuses(signed_in={204}, anonymous={401}))],
        ends_session=True,
    ),
    "POST /api/v1/auth/logout-all": Teaching(
        token=True,
        variants=lambda s: [Variant(expect=statuses(signed_in={204}, anonymous={401}))],
        ends_session=True,
    ),
    "POST /api/v1/auth/password": Teaching(
        token=True,
        body=lambda s, c: {"current_password": c.password, "new_password": _next_password(c)},
        variants=lambda s: [Variant(expect=statuses(signed_in={200}, anonymous={401}))],
        after=_adopt_new_password,
    ),
    "POST /api/v1/auth/password-reset": Teaching(
        token=False,
        # A's address asked for in B's marketplace: B's usual answer, and nothing of A's moves.
        body=lambda s, c: {"email": s.victim["shopper"].email},
        variants=lambda s: [Variant(expect=statuses(signed_in={202}, anonymous={202}))],
    ),
    "POST /api/v1/auth/password-reset/confirm": Teaching(
        token=False,
        # A's live reset token presented in B: refused, and (the snapshot shows) not used up.
        body=lambda s, c: {
            "token": s.extra[f"reset_token:{VICTIM}"],
            "new_password": "an intruder's long passphrase",
        },
        variants=lambda s: [Variant(expect=statuses(signed_in={401}, anonymous={401}))],
    ),
    # --- users -------------------------------------------------------------------------------
    "GET /api/v1/users/me": Teaching(
        token=True,
        variants=lambda s: [Variant(expect=statuses(signed_in={200}, anonymous={401}), own=True)],
        own=lambda s, c: str(c.account.id) if c.account else "",
    ),
    "PATCH /api/v1/users/me": Teaching(
        token=True,
        body=lambda s, c: {"display_name": f"Renamed {c.name}"},
        variants=lambda s: [Variant(expect=statuses(signed_in={200}, anonymous={401}), own=True)],
        own=lambda s, c: str(c.account.id) if c.account else "",
    ),
    "GET /api/v1/users": Teaching(
        token=True,
        variants=lambda s: [
            Variant(expect=ADMIN_ONLY, own=True),
            Variant({"role": "seller"}, ADMIN_ONLY),
            Variant({"limit": "1"}, ADMIN_ONLY),
            Variant(
                {"cursor": s.user_cursor},
                # Refused either way: the cursor may be checked before the role.
                statuses(admin=BAD_CURSOR, seller={403, 422}, shopper={403, 422}, anonymous={401}),
            ),
        ],
        own=lambda s, c: str(s.attacker["admin"].id),
    ),
    "GET /api/v1/users/{user_id}": Teaching(token=True),
    "PUT /api/v1/users/{user_id}/role": Teaching(token=True, body=lambda s, c: {"role": "admin"}),
    "POST /api/v1/users/{user_id}/deactivate": Teaching(token=True),
    # --- products ----------------------------------------------------------------------------
    "GET /api/v1/products": Teaching(
        token=True,
        variants=lambda s: [
            Variant(expect=statuses(signed_in={200}, anonymous={200}), own=True),
            Variant({"q": s.product_name}, statuses(signed_in={200}, anonymous={200})),
            Variant({"category": s.product_category}, statuses(signed_in={200}, anonymous={200})),
            Variant(
                {"seller_id": str(s.victim["seller"].id)},
                statuses(signed_in={200}, anonymous={200}),
            ),
            Variant({"sort": "name", "limit": "100"}, statuses(signed_in={200}, anonymous={200})),
            Variant(
                {"cursor": s.product_cursor},
                statuses(signed_in=BAD_CURSOR, anonymous=BAD_CURSOR),
            ),
        ],
        own=lambda s, c: s.own_product_id,
    ),
    "POST /api/v1/products": Teaching(
        token=True,
        body=lambda s, c: {
            "sku": unique("B-").upper(),
            "name": f"Globex thing by {c.name}",
            "category": "misc",
            "price": {"amount": 100, "currency": "EUR"},
            "stock": 1,
        },
        variants=lambda s: [
            Variant(expect=statuses(admin={201}, seller={201}, shopper={403}, anonymous={401}))
        ],
    ),
    # B imports a file naming A's SKUs: queued in B (what the job then does is attacked in
    # test_jobs.py, with a worker running).
    "POST /api/v1/products/imports": Teaching(
        token=True,
        content=lambda s, c: (
            import_csv([(str(s.extra["victim_sku"]), f"Globex copy by {c.name}")]),
            "text/csv",
        ),
        variants=lambda s: [
            Variant(expect=statuses(admin={202}, seller={202}, shopper={403}, anonymous={401}))
        ],
    ),
    "GET /api/v1/products/{product_id}": Teaching(token=True),
    "PATCH /api/v1/products/{product_id}": Teaching(
        token=True,
        body=lambda s, c: {"stock": 0, "name": "taken over"},
        headers={"If-Match": '"1"'},
    ),
    "DELETE /api/v1/products/{product_id}": Teaching(token=True, headers={"If-Match": '"1"'}),
    # --- jobs --------------------------------------------------------------------------------
    "GET /api/v1/jobs": Teaching(
        token=True,
        variants=lambda s: [
            Variant(expect=ADMIN_ONLY, own=True),
            Variant({"state": "dead"}, ADMIN_ONLY, own=True),
            Variant({"state": "succeeded", "limit": "100"}, ADMIN_ONLY),
            Variant(
                {"cursor": str(s.extra["job_cursor"])},
                # Refused either way: the cursor may be checked before the role.
                statuses(admin=BAD_CURSOR, seller={403, 422}, shopper={403, 422}, anonymous={401}),
            ),
        ],
        own=lambda s, c: str(s.extra[f"jobs:{ATTACKER}"][0]),
    ),
    "GET /api/v1/jobs/summary": Teaching(
        token=True,
        variants=lambda s: [Variant(expect=ADMIN_ONLY)],
        check=lambda s, c, r: _summary_counts_only_b(s, r),
    ),
    "GET /api/v1/jobs/{job_id}": Teaching(token=True),
    "GET /api/v1/jobs/{job_id}/result": Teaching(token=True),
    "POST /api/v1/jobs/{job_id}/retry": Teaching(token=True),
    "POST /api/v1/jobs/{job_id}/discard": Teaching(token=True),
    # --- operations --------------------------------------------------------------------------
    "GET /healthz": Teaching(
        token=False, variants=lambda s: [Variant(expect=statuses(signed_in={200}, anonymous={200}))]
    ),
    "GET /readyz": Teaching(
        token=False, variants=lambda s: [Variant(expect=statuses(signed_in={200}, anonymous={200}))]
    ),
    # Not public: only the operator's metrics token opens it (no caller here holds it).
    "GET /metrics": Teaching(
        token=False, variants=lambda s: [Variant(expect=statuses(signed_in={404}, anonymous={404}))]
    ),
}
