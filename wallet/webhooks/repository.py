"""The webhooks' queries: endpoints, deliveries, attempts, and the outbox rows they relay."""

from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

ENDPOINT_DELETED: Final = "endpoint deleted"

_GIVE_UP = text(
    """
    UPDATE webhook_deliveries
    SET status = 'failed', next_attempt_at = NULL, leased_until = NULL, last_error = :reason
    WHERE endpoint_id = :endpoint AND status = 'pending'
      AND (CAST(:delivery AS text) IS NULL OR id = :delivery)
    """
)


def give_up_for_deleted_endpoint(
    session: Session, endpoint_id: str, delivery_id: str | None = None
) -> None:
    """Fail the pending deliveries of a deleted endpoint: all of them, or the one given."""
    params = {"endpoint": endpoint_id, "delivery": delivery_id, "reason": ENDPOINT_DELETED}
    session.execute(_GIVE_UP, params)


INSERT_ENDPOINT = text(
    """
    INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret_ciphertext)
    VALUES (:id, :tenant, :url, :types, :sealed)
    RETURNING id, url, event_types, created_at
    """
)


TENANT_ENDPOINTS = text(
    """
    SELECT id, url, event_types, created_at FROM webhook_endpoints
    WHERE tenant_id = :tenant AND deleted_at IS NULL
    ORDER BY created_at, id
    """
)


ENDPOINT = text(
    """
    SELECT id, url, event_types, created_at FROM webhook_endpoints
    WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL
    """
)


DELETE_ENDPOINT = text(
    """
    UPDATE webhook_endpoints SET deleted_at = now()
    WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL
    RETURNING id
    """
)


DELIVERY_ATTEMPTS = text(
    """
    SELECT attempt_number, attempted_at, status_code, error, duration_ms
    FROM webhook_attempts WHERE delivery_id = :id ORDER BY id
    """
)


DELIVERY_CREATED_AT = text(
    "SELECT created_at FROM webhook_deliveries WHERE id = :id AND endpoint_id = :ep"
)


MARK_RELAYED = text("UPDATE outbox SET relayed_at = now() WHERE id = ANY(:ids)")


LOCK_UNRELAYED = text(
    """
    SELECT id, event_id, tenant_id, event_type FROM outbox
    WHERE relayed_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


# Every tenant's: who hears of an event that is no one tenant's own (a chain halted).
ALL_LIVE_ENDPOINTS = text(
    "SELECT tenant_id, event_types FROM webhook_endpoints WHERE deleted_at IS NULL"
)


LIVE_ENDPOINTS = text(
    """
    SELECT id, tenant_id, event_types FROM webhook_endpoints
    WHERE tenant_id = ANY(:tenants) AND deleted_at IS NULL
    """
)


INSERT_DELIVERIES = text(
    """
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, enqueued_at)
    SELECT id, event_id, endpoint_id, now()
    FROM unnest(CAST(:ids AS text[]), CAST(:events AS text[]), CAST(:endpoints AS text[]))
        AS wanted(id, event_id, endpoint_id)
    ON CONFLICT (event_id, endpoint_id) DO NOTHING
    RETURNING id
    """
)


FORGET_HAND_OVER = text(
    "UPDATE webhook_deliveries SET enqueued_at = NULL WHERE id = ANY(:ids) AND status = 'pending'"
)


CLAIM_DUE = text(
    """
    WITH due AS (
        SELECT id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
          AND (enqueued_at IS NULL
               OR enqueued_at < now() - make_interval(secs => :requeue))
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries d SET enqueued_at = now()
    FROM due WHERE d.id = due.id
    RETURNING d.id
    """
)


INSERT_ATTEMPT = text(
    """
    INSERT INTO webhook_attempts
        (delivery_id, attempt_number, attempted_at, status_code, error, duration_ms)
    VALUES (:id, :number, :at, :code, :error, :duration)
    """
)


DUE_DELIVERY = text(
    """
    SELECT d.endpoint_id, e.tenant_id,
           CASE WHEN e.paused_until > now() THEN e.paused_until END AS paused_until
    FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.id = :id AND d.status = 'pending' AND d.next_attempt_at <= now()
    """
)


# Claims for one tenant's endpoints take turns, so counting and claiming are one step.
LOCK_TENANT_CLAIMS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('webhook-claims:' || :tenant, 0))"
)


ATTEMPTS_IN_FLIGHT = text(
    """
    SELECT count(*) FILTER (WHERE d.endpoint_id = :endpoint) AS endpoint, count(*) AS tenant
    FROM webhook_endpoints e
    JOIN webhook_deliveries d ON d.endpoint_id = e.id
    WHERE e.tenant_id = :tenant AND d.leased_until > now()
    """
)


DEFER_DELIVERY = text(
    """
    UPDATE webhook_deliveries
    SET next_attempt_at = greatest(
            now() + make_interval(secs => :wait), CAST(:not_before AS timestamptz)),
        enqueued_at = NULL
    WHERE id = :id AND status = 'pending'
    """
)


CLAIM_DELIVERY = text(
    """
    WITH claimed AS (
        UPDATE webhook_deliveries
        SET attempt_count = attempt_count + 1,
            next_attempt_at = now() + make_interval(secs => :lease),
            leased_until = now() + make_interval(secs => :lease),
            first_attempted_at = coalesce(first_attempted_at, now()),
            enqueued_at = NULL
        WHERE id = :id AND status = 'pending' AND next_attempt_at <= now()
        RETURNING id, endpoint_id, event_id, attempt_count
    )
    SELECT c.id, c.endpoint_id, c.attempt_count, now() AS attempted_at,
           e.url, e.secret_ciphertext, e.deleted_at,
           o.event_id, o.event_type, o.created_at, o.payload
    FROM claimed c
    JOIN webhook_endpoints e ON e.id = c.endpoint_id
    JOIN outbox o ON o.event_id = c.event_id
    """
)


RECORD_OUTCOME = text(
    """
    WITH outcome AS (
        SELECT id, CASE
            WHEN :ok THEN 'delivered'
            WHEN now() - first_attempted_at >= make_interval(secs => :give_up)
                THEN 'failed'
            ELSE 'pending'
        END AS status
        FROM webhook_deliveries
        WHERE id = :id AND status = 'pending' AND attempt_count = :number
    )
    UPDATE webhook_deliveries d
    SET status = outcome.status,
        next_attempt_at = CASE WHEN outcome.status = 'pending'
            THEN now() + make_interval(secs => :delay) END,
        delivered_at = CASE WHEN outcome.status = 'delivered' THEN now() END,
        leased_until = NULL,
        last_status_code = :code,
        last_error = :error
    FROM outcome WHERE d.id = outcome.id
    RETURNING d.status
    """
)


# After `pause_after` failed attempts in a row, the endpoint pauses, longer each time (the
# exponent is capped where the delay is long past the maximum anyway).
RECORD_ENDPOINT_OUTCOME = text(
    """
    UPDATE webhook_endpoints
    SET consecutive_failures = CASE WHEN :ok THEN 0 ELSE consecutive_failures + 1 END,
        paused_until = CASE WHEN NOT :ok AND consecutive_failures + 1 >= :pause_after
            THEN now() + make_interval(secs => least(
                :maximum,
                :base * power(:factor, least(consecutive_failures + 1 - :pause_after, 40))))
        END
    WHERE id = :endpoint
    """
)


PURGE_CONSUMED_MESSAGES = text(
    """
    DELETE FROM kombu_message WHERE id IN (
        SELECT id FROM kombu_message WHERE visible = false LIMIT 10000
    )
    """
)


_DELIVERY_COLUMNS = """
    d.id, d.event_id, o.event_type, d.status, d.attempt_count, d.last_status_code,
    d.last_error, d.next_attempt_at, d.created_at, d.delivered_at
"""
_ENDPOINT_DELIVERIES = f"""
    SELECT {_DELIVERY_COLUMNS}
    FROM webhook_deliveries d JOIN outbox o ON o.event_id = d.event_id
    WHERE d.endpoint_id = :endpoint {{before}}
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT :limit
"""  # noqa: S608 - fixed SQL fragments only
DELIVERIES = text(_ENDPOINT_DELIVERIES.format(before=""))
DELIVERIES_BEFORE = text(
    _ENDPOINT_DELIVERIES.format(before="AND (d.created_at, d.id) < (:before_at, :before_id)")
)
DELIVERY = text(
    f"""
    SELECT {_DELIVERY_COLUMNS}
    FROM webhook_deliveries d
    JOIN outbox o ON o.event_id = d.event_id
    JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.id = :id AND e.tenant_id = :tenant
    """  # noqa: S608 - fixed SQL fragments only
)
