"""Documentation generated from the databases themselves: the material tasks are synthesised from.

One Markdown `Doc` per database (`# Database x`, then `## Table y` with columns, keys and three
sample rows), split into parts when a database is too long for one chunk, plus a guide that says
which SQL dialect runs and what an action looks like. The reset observation reuses the compact
one-line-per-table summary.
"""

from __future__ import annotations

from lbi.envs.sql.common import TableInfo
from lbi.envs.sql.scoring import normalize_value
from lbi.types import Doc

MAX_DOC_CHARS = 3500  # about 900 tokens, near the synth stage's default chunk size


def _value(v: object) -> str:
    text = "NULL" if v is None else str(normalize_value(v)).replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def table_section(t: TableInfo) -> str:
    lines = [
        f"## Table `{t.name}` ({t.row_count} rows)",
        "",
        "| column | type | key |",
        "|---|---|---|",
    ]
    refs = {col: f"-> `{tab}`.`{ref}`" for col, tab, ref in t.foreign_keys}
    for c in t.columns:
        key = " ".join(x for x in ("PK" if c.primary_key else "", refs.get(c.name, "")) if x)
        lines.append(f"| `{c.name}` | {c.type} | {key} |")
    if t.sample:
        lines += ["", "Sample rows:", "", "| " + " | ".join(c.name for c in t.columns) + " |"]
        lines.append("|" + "---|" * len(t.columns))
        lines += ["| " + " | ".join(_value(v) for v in row) + " |" for row in t.sample]
    else:
        lines += ["", "The table is empty."]
    return "\n".join(lines)


def database_docs(env: str, db: str, tables: list[TableInfo]) -> list[Doc]:
    """One doc for the database, or several parts of whole tables when it is long."""
    head = f"# Database `{db}`\n\nTables: " + ", ".join(f"`{t.name}`" for t in tables) + "."
    groups: list[list[str]] = [[]]
    size = len(head)
    for section in (table_section(t) for t in tables):
        if groups[-1] and size + len(section) > MAX_DOC_CHARS:
            groups.append([])
            size = len(head)
        groups[-1].append(section)
        size += len(section) + 2
    docs = []
    for i, sections in enumerate(groups, 1):
        title = db if len(groups) == 1 else f"{db} (part {i} of {len(groups)})"
        text = "\n\n".join([head, *sections])
        docs.append(Doc(env=env, source=f"spider/{db}", title=title, text=text, setup={"db": db}))
    return docs


def schema_summary(tables: list[TableInfo]) -> str:
    """`table(col TYPE, ...)` per line, PK columns starred and foreign keys as arrows."""
    lines = []
    for t in tables:
        refs = {col: f"->{tab}.{ref}" for col, tab, ref in t.foreign_keys}
        cols = ", ".join(
            f"{c.name}{'*' if c.primary_key else ''} {c.type}{refs.get(c.name, '')}"
            for c in t.columns
        )
        lines.append(f"{t.name}({cols})")
    return "\n".join(lines)


def guide_doc(env: str, dialect_label: str, action_help: str, databases: list[str]) -> Doc:
    listing = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if dialect_label.startswith("SQLite")
        else "SHOW TABLES"
    )
    text = f"""# Using the SQL environment

Each episode works on one database, a private copy that you may read and change; nothing you
change reaches the next episode. The engine is {dialect_label}. Text comparisons ignore case
(`'cat' = 'Cat'`), as in the MySQL original of these databases.

Databases: {", ".join(f"`{d}`" for d in databases)}.

## Actions

{action_help}

## Finding your way

- List the tables: `{listing}`.
- Look at a few rows before filtering: `SELECT * FROM some_table LIMIT 5`.
- Results show at most a few rows, followed by the total row count in parentheses.
- An error comes back as text starting with `Error:`; fix the statement and try again.
"""
    # An episode needs one database: tasks written from the guide run on the first one, and the
    # guide says so, so the task writer can name its tables.
    setup = {"db": databases[0]} if databases else {}
    if len(databases) > 1:
        text += f"\nTasks written from this guide run on the `{databases[0]}` database.\n"
    return Doc(env=env, source="guide", title="SQL environment guide", text=text, setup=setup)
