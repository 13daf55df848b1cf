"""``krakenbot report|orders|fills`` on real SQLite stores written by the real Store class."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.clock import FakeClock
from bot.core.log import reset_logging
from bot.research.cli import main_report
from bot.store import Store
from tests.unit.research.helpers import BTC, T0, S, traded, write_paper_store

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()  # in-process `main` configures logging for its subcommand


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "krakenbot.db"
    write_paper_store(path).close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--log-format", "json", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_prints_the_summary_and_writes_json_and_html(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(store_path)
    out_dir = tmp_path / "out" / "run1"
    code, out, err = run(capsys, "report", "--store", str(store_path), "--out", str(out_dir))
    assert code == 0, err
    assert out.startswith(f"krakenbot report: paper run from store {store_path}\n")
    assert "mm BTC/USD" in out and "grid BTC/USD" in out and "total USD" in out
    assert "mode     paper" in out
    assert f"wrote {out_dir / 'report.json'}" in err
    doc = json.loads((out_dir / "report.json").read_text())
    rows = {(r["strategy"], r["symbol"]): r for r in doc["figures"] if r["scope"] == "line"}
    assert rows[("mm", "BTC/USD")]["fills"] == 3  # two of its orders, one by its id block
    assert rows[("grid", "BTC/USD")]["orders_by_state"] == {"filled": 1, "rejected": 1}
    assert rows[("mm", "ETH/USD")]["orders_by_state"] == {"filled": 1, "new": 1}
    page = (out_dir / "report.html").read_text()
    assert "Plotly.newPlot" in page and 'id="symbol-BTC_USD"' in page
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html", "report.json"]
    assert digest(store_path) == before  # read-only: the store is as it was


def test_report_json_on_stdout_is_report_json(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "report", "--store", str(store_path), "--json",
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 0
    assert out == (tmp_path / "report.json").read_text()
    assert json.loads(out)["label"].startswith("paper run")


def test_a_live_runs_store_reports_the_same_figures_under_its_own_label(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Paper and live alike: the same rows in a store a live run stamped give the same
    figures; only the label and the meta (mode, venue, key id) say whose run it was."""
    live_path = tmp_path / "live.db"
    live = write_paper_store(live_path)
    for key, value in (("owner_mode", "live"), ("owner_venue", "https://api.kraken.com"),
                       ("owner_key_id", "k-1f2e3d")):  # fmt: skip
        live.set_meta(key, value)
    live.close()
    docs = {}
    for name, path in (("paper", store_path), ("live", live_path)):
        code, out, err = run(capsys, "report", "--store", str(path), "--json",
                             "--out", str(tmp_path / name))  # fmt: skip
        assert code == 0, err
        docs[name] = json.loads(out)
    assert docs["live"]["label"].startswith("live run")
    assert docs["paper"]["label"].startswith("paper run")
    assert docs["live"]["meta"]["mode"] == "live"
    assert docs["live"]["meta"]["key_id"] == "k-1f2e3d"
    assert docs["live"]["figures"] == docs["paper"]["figures"]
    code, out, _ = run(capsys, "report", "--store", str(live_path), "--out", str(tmp_path / "t"))
    assert code == 0 and out.startswith(f"krakenbot report: live run from store {live_path}\n")
    assert "mode     live" in out


def test_report_since_keeps_positions_held_before_it(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = f"@{(T0 + 60 * S) // S}"
    code, out, _ = run(capsys, "report", "--store", str(store_path), "--since", since, "--json")
    assert code == 0
    rows = {(r["strategy"], r["symbol"]): r for r in json.loads(out)["figures"]
            if r["scope"] == "line"}  # fmt: skip
    mm = rows[("mm", "BTC/USD")]
    assert mm["fills"] == 2  # the buy at 10 s is before the window...
    assert mm["realised"] == "0.380000000"  # ...yet the sell at 70 s realises against it
    # 0.01 * (30050 - 30000) - 0.12 of its fee (the buy's fee was paid before the window)


def test_a_store_being_written_is_read_without_disturbing_the_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_paper_store(tmp_path / "live.db")
    try:
        code, out, _ = run(capsys, "fills", "--store", str(tmp_path / "live.db"), "--json")
        assert code == 0 and len(json.loads(out)) == 5
        o, f = traded(BTC, "buy", "0.01", "30000.0", ts=T0 + 200 * S)
        store.save_order(o)  # the writer goes on
        assert store.record_fill(f)
        code, out, _ = run(capsys, "fills", "--store", str(tmp_path / "live.db"), "--json")
        assert len(json.loads(out)) == 6
    finally:
        store.close()


def test_orders_table_and_filters(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "orders", "--store", str(store_path))
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:4] == ["created", "(UTC)", "strategy", "symbol"]
    assert lines[-1] == "6 orders"
    assert any("rejected" in line and "grid" in line for line in lines)
    code, out, _ = run(capsys, "orders", "--store", str(store_path), "--open", "--json")
    rows = json.loads(out)
    assert [(r["symbol"], r["side"], r["price"], r["state"]) for r in rows] == [
        ("ETH/USD", "sell", "2100.00", "new")
    ]
    code, out, _ = run(capsys, "orders", "--store", str(store_path), "--strategy", "grid",
                       "--symbol", "BTC/USD", "--json")  # fmt: skip
    assert sorted(r["state"] for r in json.loads(out)) == ["filled", "rejected"]


def test_fills_table_json_and_filters(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fills", "--store", str(store_path))
    assert code == 0 and out.splitlines()[-1] == "5 fills"
    assert "0.12 USD" in out and "taker" in out
    code, out, _ = run(capsys, "fills", "--store", str(store_path), "--strategy", "mm", "--json")
    rows = json.loads(out)
    assert len(rows) == 4  # three by order, one by id block
    assert rows[0] == {
        **rows[0],
        "strategy": "mm",
        "symbol": "BTC/USD",
        "side": "buy",
        "qty": "0.01000000",
        "price": "30000.0",
        "fee": "0.12",
        "fee_asset": "USD",
        "liquidity": "maker",
        "time": "2023-11-14T22:13:30.000000000Z",
    }
    code, out, _ = run(capsys, "fills", "--store", str(store_path), "--since",
                       f"@{(T0 + 85 * S) // S}", "--symbol", "BTC/USD", "--json")  # fmt: skip
    assert [r["strategy"] for r in json.loads(out)] == ["grid", "mm"]


def test_since_relative_to_an_injected_clock(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import build_parser
    from bot.core.log import configure_logging

    configure_logging("info", "json")  # as `main` does: logs on stderr, never stdout
    args = build_parser().parse_args(["report", "--store", str(store_path), "--since", "1m",
                                      "--json"])  # fmt: skip
    assert main_report(args, clock=FakeClock(start_ns=T0 + 120 * S)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["window"]["start_ns"] == T0 + 60 * S


def bad_stores(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.txt"
    text.write_text("hello, I am not a database\n" * 100)
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("CREATE TABLE t (x)")
    newer = tmp_path / "newer.db"
    Store.open(newer).close()
    with closing(sqlite3.connect(newer)) as conn, conn:  # closed: the WAL checkpointed
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    return {
        "missing": (tmp_path / "nope.db", "no such file"),
        "directory": (tmp_path, "not a regular file"),
        "text": (text, "not an SQLite database"),
        "other": (other, r"not a krakenbot store \(tables: t\)"),
        "newer": (newer, "schema version 99 is newer than this krakenbot"),
    }


@pytest.mark.parametrize("kind", ["missing", "directory", "text", "other", "newer"])
@pytest.mark.parametrize("command", ["report", "orders", "fills"])
def test_bad_stores_exit_2_with_a_clear_message_and_are_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: str
) -> None:
    path, message = bad_stores(tmp_path)[kind]
    before = digest(path) if path.is_file() else None
    code, out, err = run(capsys, command, "--store", str(path))
    assert code == 2
    assert out == ""
    assert err.startswith(f"krakenbot: store {path}: ")
    assert __import__("re").search(message, err), err
    assert "Traceback" not in err
    if before is not None:
        assert digest(path) == before
    assert not (tmp_path / "nope.db").exists()  # never created


def test_bad_since_and_out_exit_2(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "report", "--store", str(store_path), "--since", "yesterday")
    assert (code, out) == (2, "")
    assert "--since 'yesterday': not a time; use 30m, 12h or 7d ago" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "report", "--store", str(store_path), "--out", str(blocker))
    assert code == 2 and "exists and is not a directory" in err
    code, _, err = run(capsys, "report", "--store", str(store_path), "--sampling", "2h")
    assert code == 2 and "invalid choice" in err


def test_the_real_command_line(store_path: Path, tmp_path: Path) -> None:
    """One run as a user types it: a subprocess, logs on stderr, the summary on stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "report", "--store", str(store_path), "--out",
         str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "total USD" in result.stdout
    assert "progress_done" in result.stderr  # not a terminal: a log line, not a bar
    missing = subprocess.run(
        [sys.executable, "-m", "bot", "fills", "--store", str(tmp_path / "none.db")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"krakenbot: store {tmp_path / 'none.db'}: no such file"
