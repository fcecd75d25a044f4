"""Plain-text tables of model metrics, for the management commands."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "float":
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


COLUMNS = [
    ("rows", "rows", "int"),
    ("rmse_log1p", "RMSE log1p", "float"),
    ("median_ape", "median APE", "pct"),
    ("within_2x", "within 2x", "pct"),
]


def metrics_table(metadata: dict[str, Any]) -> str:
    """Holdout metrics per category, and (versions with a model card) how often the 80% interval held."""
    metrics = metadata["metrics"]
    rows = [("overall", metrics["overall"])] + sorted(metrics["per_category"].items())
    card = metadata.get("model_card")
    header = ["category"] + [title for _, title, _ in COLUMNS] + (["in 80% interval"] if card else [])
    body = []
    for name, values in rows:
        line = [name] + [_fmt(values.get(key), kind) for key, _, kind in COLUMNS]
        if card:
            coverage = card["coverage"] if name == "overall" else card["per_category"][name]["coverage"]
            line.append(_fmt(coverage["overall"], "pct"))
        body.append(line)
    return _table(header, body)


def versions_table(versions: list[dict[str, Any]], active: int | None) -> str:
    header = ["version", "active", "created (UTC)", "trained on", "rows"] + [title for _, title, _ in COLUMNS[1:]]
    body = []
    for meta in versions:
        overall = meta["metrics"]["overall"]
        body.append(
            [
                str(meta["version"]),
                "*" if meta["version"] == active else "",
                meta["created"].strftime("%Y-%m-%d %H:%M:%S"),
                meta["training_data"]["source"],
                _fmt(meta["training_data"]["rows"], "int"),
            ]
            + [_fmt(overall.get(key), kind) for key, _, kind in COLUMNS[1:]]
        )
    return _table(header, body)


def replay_table(report: dict[str, Any]) -> str:
    header = [
        "category",
        "rows",
        "median ratio",
        "mean |change|",
        "over 2x",
        "actuals",
        "RMSE cand.",
        "RMSE active",
        "closer",
    ]
    rows = [("overall", report["overall"])] + sorted(report["per_category"].items())
    body = []
    for name, values in rows:
        candidate, active = values["candidate"] or {}, values["active"] or {}
        body.append(
            [
                name,
                _fmt(values["rows"], "int"),
                _fmt(values["median_ratio"], "float"),
                _fmt(values["mean_abs_log1p_change"], "float"),
                _fmt(values["share_over_2x"], "pct"),
                _fmt(values["with_actuals"], "int"),
                _fmt(candidate.get("rmse_log1p"), "float"),
                _fmt(active.get("rmse_log1p"), "float"),
                values["closer"] or "-",
            ]
        )
    return _table(header, body)


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        # First column left-aligned (names), the rest right-aligned (numbers).
        return "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])
