"""Spider-style execution accuracy: does the submitted result equal the gold query's result?

Both results come from the same database engine, so values are compared as the engine returned
them, after a light normalisation that removes driver noise: 1 == 1.0 == Decimal("1.0000"),
floats compare to 6 decimals, bytes are decoded and dates become their ISO text (MariaDB returns
datetime objects where SQLite returns strings). Strings compare case-sensitively: case-folding
belongs to the database (text columns are NOCASE on SQLite, `_ci` on MariaDB, so `WHERE` clauses
already behave alike), while a query that returns `upper(name)` instead of `name` returned a
different answer.

Rows compare as a multiset, unless the gold query has ORDER BY at its top level, in which case
the order must match too. Columns compare by position.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

Row = tuple[Any, ...]
_ORDER_RE = re.compile(r"\border\s+by\b", re.IGNORECASE)


def normalize_value(v: Any) -> Any:
    """A hashable value in which driver differences no longer show."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float | Decimal):
        f = float(v)
        if not math.isfinite(f):
            return repr(f)
        if f.is_integer() and abs(f) < 2**53:
            return int(f)
        return round(f, 6)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    return str(v)


def normalize_rows(rows: Iterable[Sequence[Any]]) -> list[Row]:
    return [tuple(normalize_value(v) for v in row) for row in rows]


def is_ordered(sql: str, dialect: str = "sqlite") -> bool:
    """True when the query's outermost statement has ORDER BY, so its row order is part of the answer."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return bool(_ORDER_RE.search(sql))  # Spider's own rule, when the query does not parse
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return tree is not None and tree.args.get("order") is not None


def results_match(
    predicted: Iterable[Sequence[Any]], gold: Iterable[Sequence[Any]], ordered: bool
) -> bool:
    p, g = normalize_rows(predicted), normalize_rows(gold)
    if ordered:
        return p == g
    return Counter(p) == Counter(g)
