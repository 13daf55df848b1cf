"""The files a search leaves in ``--out``, each written whole or not at all.

* ``best.yaml``: the last fold's best params (the most recent data) as the deployment's
  ``strategies:`` entries (name, class, symbols, params with the best values merged),
  exact decimals, ready to paste;
* ``trials.csv`` and ``trials.json``: every trial of every fold (number, state, value,
  params, seed, worker, wall time, the report's headline figures, note);
* ``report.html``: the walk-forward table and Optuna's plots (``bot.optimize.page``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.core.files import write_atomic
from bot.optimize.page import render_page
from bot.optimize.results import FoldResult
from bot.optimize.trial import Loaded

__all__ = ["best_yaml", "trial_rows", "write_outputs"]


class _Dumper(yaml.SafeDumper):
    """YAML with exact decimals: ``Decimal("0.001")`` is written ``0.001``, ``Decimal(15)``
    ``15`` (the config reader reads them back exactly)."""


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    if value == value.to_integral_value():
        return dumper.represent_scalar("tag:yaml.org,2002:int", str(int(value)))
    text = format(value, "f")  # never 1E-7: plain digits
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _decimal)


def best_yaml(loaded: Loaded, results: Sequence[FoldResult]) -> str | None:
    """The deployment's ``strategies:`` with the last fold's best params merged, or
    ``None`` when that fold completed no trial."""
    last = results[-1]
    if last.best is None:
        return None
    entries = []
    for s in loaded.config.strategies:
        params = {**s.params, **last.values.get(s.name, {})}
        entries.append(
            {"name": s.name, "class": s.class_, "symbols": list(s.symbols), "params": params}
        )
    search = loaded.search
    head = (
        f"# krakenbot optimize: study {search.study!r}, objective {search.objective},"
        f" best of fold {last.fold.index} (trial {last.best.number})\n"
        f"# in-sample {_num(last.in_sample)}, out-of-sample {_num(last.out_of_sample)}"
        f"{' (' + last.oos_note + ')' if last.oos_note else ''}\n"
        "# Paste each params: block over the same strategy's in the deployment (its other keys,"
        " risk and the rest, stay as they are).\n"
    )
    if last.warning:
        head += f"# WARNING: {last.warning}\n"
    body = yaml.dump({"strategies": entries}, Dumper=_Dumper, sort_keys=False)
    return head + body


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def trial_rows(loaded: Loaded, results: Sequence[FoldResult]) -> list[dict[str, Any]]:
    """One row per trial of every fold, for the CSV and the JSON."""
    rows = []
    for result in results:
        for t in result.trials:
            values = loaded.space.values_of(t.params) if t.params else {}
            rows.append(
                {
                    "fold": result.fold.index,
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "value": t.value,
                    "best": result.best is not None and t.number == result.best.number,
                    "params": {
                        f"{name}.{k}": _plain(v)
                        for name, ps in values.items()
                        for k, v in ps.items()
                    },
                    "seed": t.user_attrs.get("seed"),
                    "worker": t.user_attrs.get("worker"),
                    "wall_s": t.user_attrs.get("wall_s"),
                    "figures": t.user_attrs.get("figures", {}),
                    "note": t.user_attrs.get("note", ""),
                }
            )
    return rows


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    params = sorted({k for r in rows for k in r["params"]})
    figures = sorted({k for r in rows for k in r["figures"]})
    head = ["fold", "number", "state", "value", "best", *params, "seed", "worker", "wall_s",
            *figures, "note"]  # fmt: skip
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in rows:
        writer.writerow(
            [r["fold"], r["number"], r["state"], "" if r["value"] is None else r["value"],
             r["best"], *(r["params"].get(p, "") for p in params), r["seed"], r["worker"],
             r["wall_s"], *(r["figures"].get(f, "") for f in figures), r["note"]]
        )  # fmt: skip
    return buf.getvalue()


def write_outputs(loaded: Loaded, results: Sequence[FoldResult], out: Path) -> list[Path]:
    """Every output file in ``out`` (see the module); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(loaded, results)
    written = []
    snippet = best_yaml(loaded, results)
    if snippet is not None:
        write_atomic(out / "best.yaml", snippet)
        written.append(out / "best.yaml")
    write_atomic(out / "trials.csv", _csv(rows))
    write_atomic(out / "trials.json", json.dumps(rows, indent=1, default=str) + "\n")
    write_atomic(out / "report.html", render_page(loaded, results))
    written += [out / "trials.csv", out / "trials.json", out / "report.html"]
    return written
