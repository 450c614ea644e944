"""Pass/fail for a run: floors from `evals/gates.yaml`, and no case worse than the baseline run.

Exit codes (the runner's contract with CI): 0 pass, 1 a floor missed or a regression,
2 the run could not be made (see evals.runner.InfraError).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from evals.metrics import HARD, METRICS

GATES_FILE = Path(__file__).parent / "gates.yaml"


class GatesError(Exception):
    """gates.yaml is malformed."""


class Floor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None


class Gates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    floors: dict[str, Floor] = Field(default_factory=dict, description="Per metric, on the overall mean.")
    baseline: str | None = Field(None, description="A run JSON (relative to this file) no case may get worse than.")
    regression_metrics: list[str] = Field(default_factory=list, description="Per-case metrics compared to the baseline.")
    tolerance: float = Field(0.0, ge=0, description="A case's drop up to this much is not a regression.")


def load_gates(path: Path = GATES_FILE) -> Gates:
    try:
        gates = Gates.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise GatesError(f"{path}: {exc}") from exc
    unknown = [m for m in [*gates.floors, *gates.regression_metrics] if m not in METRICS]
    if unknown:
        raise GatesError(f"{path}: unknown metrics {unknown}; known: {', '.join(METRICS)}")
    return gates


def verdict(run: dict, gates: Gates, baseline: dict | None = None) -> list[str]:
    """Every reason the run fails, in words; empty when it passes."""
    problems = []
    overall = run["summary"]["overall"]
    for name, floor in gates.floors.items():
        mean = overall[name]["mean"]
        if mean is None:
            continue
        if floor.min is not None and mean < floor.min:
            problems.append(f"{name} = {mean:.3f}, below the floor {floor.min}")
        if floor.max is not None and mean > floor.max:
            problems.append(f"{name} = {mean:.3f}, above the ceiling {floor.max}")
    for r in run["results"]:  # hard metrics hold on every case, not on average
        for name in HARD:
            value = r["scores"].get(name)
            if value is not None and value < 1.0:
                problems.append(f"{r['id']}: {name} = {value:.2f} (must be 1 on every case)")
    if baseline is not None:
        before = {(r["id"], r["repeat"]): r["scores"] for r in baseline["results"]}
        for r in run["results"]:
            old = before.get((r["id"], r["repeat"]))
            if old is None:
                continue
            for name in gates.regression_metrics:
                a, b = old.get(name), r["scores"].get(name)
                if a is not None and b is not None and b < a - gates.tolerance:
                    problems.append(f"{r['id']}: {name} regressed {a:.2f} -> {b:.2f}")
    return problems
