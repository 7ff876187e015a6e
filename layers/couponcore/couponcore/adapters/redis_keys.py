"""Redis key names. Every key of one coupon shares the hash tag ``{<couponId>}`` so a Lua script that
touches them all runs on one slot (ElastiCache cluster mode and Serverless require it)."""

from __future__ import annotations


def reserved_users(coupon_id: int) -> str:
    """SET of user ids holding a seat of an ASYNC coupon, persisted or not yet: its size is the stock taken."""
    return f"coupon:{{{coupon_id}}}:reserved"


def pending_reservations(coupon_id: int) -> str:
    """HASH user id -> the pending entry (PendingReservation.stored) of seats not yet confirmed in MySQL."""
    return f"coupon:{{{coupon_id}}}:pending"


def rejected_users(coupon_id: int) -> str:
    """SET of user ids whose reservation MySQL refused for good; their seat was released."""
    return f"coupon:{{{coupon_id}}}:rejected"


def issued_at(coupon_id: int) -> str:
    """HASH user id -> what does not change about the issue MySQL holds (its date and expiry, epoch µs), or a mark
    that its use changed (adapters/reservations.py): final outcomes, so that polls of the status route need no
    MySQL. Only a cache of MySQL's rows (it lives ISSUED_AT_TTL_S after its last write)."""
    return f"coupon:{{{coupon_id}}}:issued-at"


ISSUED_AT_TTL_S = 86_400


def seats_counted(coupon_id: int) -> str:
    """STRING, present only while the seat keys above are known to be complete: written when they are built
    from MySQL (the epoch of that rebuild, ms). A Redis that lost data has lost it too, and sells nothing."""
    return f"coupon:{{{coupon_id}}}:counted"


def seats_lost_at(coupon_id: int) -> str:
    """STRING: when the seat state was first found incomplete (epoch ms); the pause is measured from it."""
    return f"coupon:{{{coupon_id}}}:lost-at"


def seats_rebuild(coupon_id: int) -> str:
    """SET being built from MySQL's issues; renamed into the reserved set when the rebuild completes."""
    return f"coupon:{{{coupon_id}}}:rebuild"


def rebuild_lock(coupon_id: int) -> str:
    """Held while one process rebuilds the seat state (others answer 503 meanwhile)."""
    return f"coupon:{{{coupon_id}}}:rebuild-lock"


def resend_counts(coupon_id: int) -> str:
    """HASH user id -> how many times reconciliation sent a pending reservation again."""
    return f"coupon:{{{coupon_id}}}:resend-count"


def last_resends(coupon_id: int) -> str:
    """HASH user id -> when reconciliation last sent a pending reservation again (epoch ms)."""
    return f"coupon:{{{coupon_id}}}:last-resend"


def former_resends(coupon_id: int) -> str:
    """HASH of "<count>|<last>" strings written by earlier versions (now resend_counts and last_resends):
    no longer read; it expires with the coupon's other keys."""
    return f"coupon:{{{coupon_id}}}:resends"


def user_requests(coupon_id: int, user_id: int) -> str:
    """STRING: how many issue requests this user sent for this coupon in the current second (it expires with
    the second); over the fair share, requests are refused before any lock or row lock."""
    return f"coupon:{{{coupon_id}}}:requests:{user_id}"


def issue_lock(coupon_id: int) -> str:
    """The V1-async distributed lock of one coupon (the seed's ``lock_{couponId}``)."""
    return f"coupon:{{{coupon_id}}}:lock"


def reconcile_pass() -> str:
    """Held while a reconcile pass runs: two passes would only repeat each other's resends."""
    return "reconcile:pass"


def coupon_view(coupon_id: int) -> str:
    """The cached issue view of a coupon."""
    return f"coupon:{{{coupon_id}}}:view"


def highest_coupon_id() -> str:
    """The largest coupon id there is: the catalog refuses ids above it without reading MySQL."""
    return "coupons:highest-id"


def all_of(coupon_id: int) -> list[str]:
    """Every key of one coupon (they expire together once the coupon is settled)."""
    return [
        reserved_users(coupon_id),
        pending_reservations(coupon_id),
        rejected_users(coupon_id),
        issued_at(coupon_id),
        resend_counts(coupon_id),
        last_resends(coupon_id),
        former_resends(coupon_id),
        seats_counted(coupon_id),
        seats_lost_at(coupon_id),
        seats_rebuild(coupon_id),
        rebuild_lock(coupon_id),
        issue_lock(coupon_id),
        coupon_view(coupon_id),
    ]
