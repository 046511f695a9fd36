"""A planted API key appears nowhere under the run directory (store, cache, exports, reports),
nor in any output, after a whole synth + eval + export against an OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.testing.fake_openai import FakeOpenAIServer

PLANTED = "sk-PLANTED-4c1f9e0d7b2a4e65a1d3"


def test_planted_key_never_reaches_disk_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LBI_TEST_KEY", PLANTED)
    runner = CliRunner()
    with FakeOpenAIServer(
        api_key=PLANTED, react_actions=["list", "set a 1", "submit"], array_items=2, match_ids=True
    ) as srv:
        base = [
            "--env",
            "toy",
            "--model",
            "openai:fake-model",
            "--run",
            "s",
            "--set",
            f"run_root={tmp_path / 'runs'}",
            "--set",
            "embed.name=hash",
            "--set",
            f"models.openai.base_url={srv.base_url}",
            "--set",
            "models.openai.api_key_env=LBI_TEST_KEY",
        ]
        outputs = [runner.invoke(app, ["synth", *base])]
        outputs.append(runner.invoke(app, ["eval", *base, "--variants", "none,both"]))
        outputs.append(
            runner.invoke(
                app,
                [
                    "export",
                    "s",
                    "-f",
                    "openai",
                    "-o",
                    str(tmp_path / "runs" / "x.jsonl"),
                    "--set",
                    f"run_root={tmp_path / 'runs'}",
                ],
            )
        )
        # A rejected key: the error names the variable, never the value.
        monkeypatch.setenv("LBI_TEST_KEY", PLANTED + "-wrong")
        bad = runner.invoke(app, ["synth", *base, "--run", "s2", "--set", "cache.enabled=false"])
    for r in outputs:
        assert r.exit_code == 0, r.output
    assert bad.exit_code == 2 and "LBI_TEST_KEY" in bad.output
    for r in [*outputs, bad]:
        assert PLANTED not in r.output
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert len(files) > 5 and any(p.name == "llm.sqlite" for p in files)
    for p in files:
        assert PLANTED.encode() not in p.read_bytes(), p
