"""The product events' schema (the Glue table's columns) and the saved Athena queries over it.

Every query filters on the partition `dt` first: Athena then reads only those days' files, which is
what keeps a query under the workgroup's scan limit (and its price) as the data grows.
"""

from __future__ import annotations

# (column, Hive type, comment): what products.events writes, schema version 1.
EVENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("schema_version", "int", "version of this record's shape"),
    ("event", "string", "product_viewed, product_listed, product_created"),
    ("occurred_at", "timestamp", "when the service handled the request (UTC)"),
    ("service", "string", "the emitting service"),
    ("product_id", "string", "the product concerned; empty for a list"),
    ("session_id", "string", "anonymous session id sent by the client (a UUID), else the request id"),
    ("request_id", "string", "the request that caused the event"),
)

LOOKBACK_DAYS = 30


def named_queries(database: str, table: str) -> dict[str, tuple[str, str]]:
    """name -> (description, SQL); the database and table are the stack's own."""
    source = f'"{database}"."{table}"'
    since = f"dt >= date_format(current_date - interval '{LOOKBACK_DAYS}' day, '%Y-%m-%d')"
    return {
        "daily-active-sessions": (
            f"Distinct anonymous sessions per day, last {LOOKBACK_DAYS} days",
            f"SELECT dt, count(DISTINCT session_id) AS active_sessions, count(*) AS events\n"
            f"FROM {source}\nWHERE {since}\nGROUP BY dt\nORDER BY dt",
        ),
        "top-products": (
            f"The 20 most viewed products, last {LOOKBACK_DAYS} days",
            f"SELECT product_id, count(*) AS views, count(DISTINCT session_id) AS sessions\n"
            f"FROM {source}\nWHERE {since} AND event = 'product_viewed'\n"
            f"GROUP BY product_id\nORDER BY views DESC\nLIMIT 20",
        ),
        "list-to-view-conversion": (
            f"Per day: sessions that listed products, how many of them then viewed one, last {LOOKBACK_DAYS} days",
            f"WITH firsts AS (\n"
            f"  SELECT dt, session_id,\n"
            f"         min(CASE WHEN event = 'product_listed' THEN occurred_at END) AS listed_at,\n"
            f"         min(CASE WHEN event = 'product_viewed' THEN occurred_at END) AS viewed_at\n"
            f"  FROM {source}\n  WHERE {since}\n  GROUP BY dt, session_id)\n"
            f"SELECT dt, count(listed_at) AS listed,\n"
            f"       count(CASE WHEN viewed_at >= listed_at THEN 1 END) AS viewed_after_listing,\n"
            f"       round(100.0 * count(CASE WHEN viewed_at >= listed_at THEN 1 END) / "
            f"nullif(count(listed_at), 0), 1) AS conversion_percent\n"
            f"FROM firsts\nGROUP BY dt\nORDER BY dt",
        ),
    }
