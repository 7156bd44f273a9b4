"""Results of one benchmark: figures, ratios against a baseline of the same run, and a JSON file.

A ratio is the product's figure over the baseline's, both measured in this run on
the same servers; targets are printed as met or missed, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stack import ROOT

OUT_DIR = ROOT / "var" / "bench"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    ratio: bool = False
    target: float | None = None  # a ratio's target: met when value >= target
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "met" if self.value >= self.target else "MISSED"


@dataclass
class Result:
    name: str
    params: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, *, note: str = "") -> None:
        self.figures.append(Figure(name, value, unit, note=note))

    def ratio(self, name: str, value: float, *, target: float | None = None, note: str = "") -> None:
        self.figures.append(Figure(name, value, "x", ratio=True, target=target, note=note))

    def table(self) -> str:
        width = max([len(f.name) for f in self.figures] + [10])
        lines = [f"== {self.name}  " + "  ".join(f"{k}={v}" for k, v in self.params.items())]
        for f in self.figures:
            value = f"{f.value:>10.3f}" if f.ratio else f"{f.value:>10.1f}"
            mark = "RATIO " if f.ratio else "      "
            tail = f"  (target >= {f.target:.2f}: {f.verdict})" if f.target is not None else ""
            note = f"  {f.note}" if f.note else ""
            lines.append(f"  {mark}{f.name:<{width}} {value} {f.unit:<10}{tail}{note}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def write(self) -> Path:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"{self.name}.json"
        body = {
            "benchmark": self.name,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": _load()},
            "params": self.params,
            "figures": [asdict(f) | {"verdict": f.verdict} for f in self.figures],
            "details": self.details,
            "notes": self.notes,
        }
        path.write_text(json.dumps(body, indent=2, default=_plain) + "\n")
        return path


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    if q <= 0:
        return min(values)
    if q >= 100:
        return max(values)
    return cuts[int(q) - 1]
