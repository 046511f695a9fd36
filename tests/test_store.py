import threading
from pathlib import Path

import pytest

from lbi.models.cache import CallCache
from lbi.store import RunStore
from lbi.types import Task, Trajectory


def test_put_is_idempotent_and_ordered(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    tasks = [Task(env="toy", instruction=f"task {n}") for n in range(5)]
    store.put(tasks, marks=[("tasks", "chunk-1")])
    store.put(tasks[:2])  # a rerun writing the same records again
    assert store.count(Task) == 5
    assert [t.id for t in store.all(Task)] == [t.id for t in tasks]
    assert store.marked("tasks") == {"chunk-1"}
    assert store.get(Task, tasks[3].id) == tasks[3]


def test_replace_keeps_position(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a = Trajectory(task_id="a", env="toy", instruction="i", model="m")
    b = Trajectory(task_id="b", env="toy", instruction="i", model="m")
    store.put([a, b])
    a.reward = 1.0
    store.put([a], replace=True)
    got = store.all(Trajectory)
    assert [t.id for t in got] == [a.id, b.id] and got[0].reward == 1.0


def test_transaction_is_atomic(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError), store.transaction() as c:
        c.execute("INSERT INTO marks(stage, key) VALUES ('s', 'k')")
        raise RuntimeError("boom")
    assert store.marked("s") == set()


def test_meta_survives_reopen(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.set_meta("k", {"x": [1, 2]})
    store.close()
    again = RunStore(tmp_path)
    assert again.get_meta("k") == {"x": [1, 2]} and again.get_meta("missing", 7) == 7


@pytest.mark.parametrize("opener", ["store", "cache"])
def test_many_openers_of_one_fresh_file_all_get_in(tmp_path: Path, opener: str) -> None:
    # Eight connections switching one new file to WAL at once: SQLite answers "database is
    # locked" to some of them without waiting (CI hit it with two cache writers); all must open.
    errors: list[BaseException] = []
    for trial in range(60):
        root = tmp_path / str(trial)

        def open_one(root: Path = root) -> None:
            try:
                if opener == "store":
                    RunStore(root).put([Task(env="toy", instruction="t")])
                else:
                    CallCache(root / "cache.sqlite").close()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
