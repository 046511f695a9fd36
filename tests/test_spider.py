"""Converting intercode-bench's MySQL dump of Spider-dev into SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lbi.envs.base import EnvError
from lbi.envs.sql import spider
from lbi.envs.sql.spider import MANIFEST, ensure_databases, load_queries

SPIDER_DBS = {
    "museum_visit", "course_teach", "singer", "orchestra", "flight_2", "wta_1", "pets_1", "voter_1",
    "concert_singer", "network_1", "world_1", "student_transcripts_tracking", "dog_kennels",
    "employee_hire_evaluation", "car_1", "battle_death", "tvshow", "poker_player",
    "cre_Doc_Template_Mgt", "real_estate_properties",
}  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ensure_databases(tmp_path_factory.mktemp("spider"))


def _count(path: Path, sql: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_all_20_databases_convert(files: dict[str, Path]) -> None:
    assert set(files) == SPIDER_DBS
    for db, path in files.items():
        tables = _count(
            path,
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'",
        )
        assert tables >= 1, db
    assert _count(files["world_1"], "SELECT count(*) FROM city") == 4079
    assert _count(files["pets_1"], "SELECT count(*) FROM Student") == 34
    # The dump holds wta_1's tables but none of its rows.
    assert _count(files["wta_1"], "SELECT count(*) FROM players") == 0


def test_mysql_details_are_translated(files: dict[str, Path]) -> None:
    conn = sqlite3.connect(files["employee_hire_evaluation"])
    ddl = " ".join(
        r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
    )
    conn.close()
    assert "COLLATE NOCASE" in ddl and "utf8mb4" not in ddl and "(255)" not in ddl
    assert "ENGINE" not in ddl and "INDEX" not in ddl
    # The composite key lost its MySQL prefix length but is still a key.
    assert 'PRIMARY KEY ("Employee_ID", "Year_awarded")' in ddl


def test_text_compares_case_insensitively_like_mysql(files: dict[str, Path]) -> None:
    lower = _count(files["pets_1"], "SELECT count(*) FROM Pets WHERE PetType = 'cat'")
    upper = _count(files["pets_1"], "SELECT count(*) FROM Pets WHERE PetType = 'CAT'")
    assert lower == upper > 0


def test_escaped_strings_survive(files: dict[str, Path]) -> None:
    names = _count(files["world_1"], "SELECT count(*) FROM country WHERE HeadOfState LIKE '%''%'")
    assert names >= 1  # e.g. Taufa'ahau Tupou IV: MySQL's \' became a plain quote
    newlines = _count(
        files["dog_kennels"],
        "SELECT count(*) FROM professionals WHERE street LIKE '%' || char(10) || '%'",
    )
    assert newlines >= 1


def test_second_call_reuses_the_files(files: dict[str, Path]) -> None:
    data_dir = next(iter(files.values())).parent
    before = {db: p.stat().st_mtime_ns for db, p in files.items()}
    again = ensure_databases(data_dir)
    assert again == files
    assert {db: p.stat().st_mtime_ns for db, p in again.items()} == before


def test_a_killed_conversion_leaves_nothing_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = spider._insert
    calls = {"n": 0}

    def dying_insert(conn: sqlite3.Connection, ins: object) -> None:
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt  # stands in for a kill in the middle of a database
        real_insert(conn, ins)  # type: ignore[arg-type]

    monkeypatch.setattr(spider, "_insert", dying_insert)
    with pytest.raises(KeyboardInterrupt):
        ensure_databases(tmp_path)
    assert not (tmp_path / MANIFEST).exists()
    assert not list(tmp_path.glob("*.tmp"))  # the half-written file was removed
    done = sorted(p.stem for p in tmp_path.glob("*.sqlite"))
    assert len(done) < 20

    monkeypatch.setattr(spider, "_insert", real_insert)
    files = ensure_databases(tmp_path)
    assert set(files) == SPIDER_DBS
    assert json.loads((tmp_path / MANIFEST).read_text())["dbs"] == list(files)


def test_a_manifest_for_another_dump_triggers_reconversion(tmp_path: Path) -> None:
    files = ensure_databases(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"stamp": "other", "dbs": list(files)}))
    files["pets_1"].write_bytes(b"not a database")
    ensure_databases(tmp_path)
    assert _count(files["pets_1"], "SELECT count(*) FROM Student") == 34


def test_queries_name_converted_databases(files: dict[str, Path]) -> None:
    queries = load_queries()
    assert len(queries) == 23
    assert {q.db for q in queries} <= set(files)
    assert all(q.question and q.gold.lower().startswith("select") for q in queries)


def test_missing_dump_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spider.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EnvError, match="intercode-bench"):
        spider.dump_path()
