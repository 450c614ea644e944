"""`tactful eval run|compare`: the eval suite from the command line (exit 0 pass, 1 fail, 2 infrastructure)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

eval_app = typer.Typer(help="Run the eval suite and compare runs.", no_args_is_help=True)
console = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[1]


def _cases(patterns: list[str], sets: list[str] | None, lang: str | None):
    from evals.cases import CaseError, load_cases

    cases = []
    try:
        for pattern in patterns or ["evals/cases/*.jsonl"]:
            path = Path(pattern)
            directory, glob = (path.parent, path.name) if any(c in path.name for c in "*?[") or path.suffix else (path, "*.jsonl")
            cases += load_cases(directory if directory.is_absolute() else Path.cwd() / directory, set(sets) if sets else None, glob)
    except CaseError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    cases = [c for c in cases if not lang or c.language == lang]
    if not cases:
        console.print(f"[red]error:[/] no cases matched {patterns or ['evals/cases/*.jsonl']}")
        raise typer.Exit(2)
    return cases


@eval_app.command("run")
def run_cmd(cases: list[str] = typer.Option(None, "--cases", help="Case files or globs (default evals/cases/*.jsonl)."),
            sets: list[str] = typer.Option(None, "--set", help="Only these sets (social, golden)."),
            lang: Optional[str] = typer.Option(None, "--lang", help="Only this language."),
            prompt: str = typer.Option("suggest", "--prompt", help="Prompt template name."),
            model: Optional[str] = typer.Option(None, "--model", help="Model name (default: TACTFUL_LLM_MODEL or the embedded one)."),
            n: int = typer.Option(1, "--n", min=1, max=5, help="Drafts per case."),
            repeat: int = typer.Option(1, "--repeat", min=1, help="Run every case N times (N different samples)."),
            llm: str = typer.Option("auto", "--llm", help="auto: recorded responses, the LLM on a miss; record; replay: never call the LLM."),
            url: Optional[str] = typer.Option(None, "--url", help="Evaluate a running tactful instead of in-process."),
            out: Path = typer.Option(Path("data/evals/latest"), "--out", help="Where the four reports go."),
            gates_file: Path = typer.Option(None, "--gates", help="Floors and baseline (default evals/gates.yaml)."),
            baseline: Optional[Path] = typer.Option(None, "--baseline", help="A run JSON no case may get worse than (overrides gates.yaml)."),
            label: str = typer.Option("", "--label", help="A name for this run in comparisons."),
            recordings: Optional[Path] = typer.Option(None, "--recordings", help="Recorded LLM responses (default evals/recordings)."),
            judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Score empathy, tone and grounding with "
                                                      "this model as an LLM judge (3 votes each; same endpoint as the drafts; "
                                                      "recorded like them). In-process runs only.")) -> None:
    """Run the cases through the pipeline, score them, write JSON/JUnit/Markdown/HTML, apply the gates."""
    from evals.gates import GATES_FILE, GatesError, load_gates, verdict
    from evals.report import write_all
    from evals.runner import InfraError, RunConfig, load_run, run

    if llm not in ("auto", "record", "replay"):
        console.print("[red]error:[/] --llm must be auto, record or replay")
        raise typer.Exit(2)
    if judge_model and url:
        console.print("[red]error:[/] --judge-model needs an in-process run (it reads the retrieved knowledge); drop --url")
        raise typer.Exit(2)
    chosen = _cases(cases, sets, lang)
    try:
        gates = load_gates(gates_file or GATES_FILE)
        base_path = baseline or ((gates_file or GATES_FILE).parent / gates.baseline if gates.baseline else None)
        base = load_run(base_path) if base_path and base_path.is_file() else None
        config = RunConfig(prompt=prompt, model=model, n=n, repeat=repeat, llm=llm, url=url, label=label or prompt,
                           recordings=str(recordings) if recordings else None, judge_model=judge_model)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task(f"eval {prompt}", total=len(chosen) * repeat)
            result = asyncio.run(run(chosen, config, on_case=lambda _case: bar.advance(task)))
    except (InfraError, GatesError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    data = result.to_json()
    problems = verdict(data, gates, base)
    paths = write_all(data, out, problems)
    _print_summary(data, problems)
    console.print("reports: " + ", ".join(str(p) for p in paths.values()))
    raise typer.Exit(1 if problems else 0)


@eval_app.command("compare")
def compare_cmd(run_a: Path = typer.Argument(..., help="run.json of the baseline (A)."),
                run_b: Path = typer.Argument(..., help="run.json of the candidate (B)."),
                out: Path = typer.Option(Path("data/evals/compare"), "--out", help="Where the comparison reports go.")) -> None:
    """Paired per-case comparison: win/tie/loss, flipped cases first, per-metric change with a bootstrap interval."""
    from evals.compare import compare
    from evals.report import comparison_markdown, write_all
    from evals.runner import InfraError, load_run

    try:
        a, b = load_run(run_a), load_run(run_b)
    except InfraError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    result = compare(a, b)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    write_all(b, out, [], result)
    print(comparison_markdown(result))


def _print_summary(data: dict, problems: list[str]) -> None:
    from evals.report import SHOWN

    s = data["summary"]
    langs = list(s["by_slice"]["language"])
    table = Table(title=f"{s['cases']} cases × {data['config']['repeat']}: {'PASS' if not problems else 'FAIL'}")
    table.add_column("metric")
    table.add_column("all", justify="right")
    for lang in langs:
        table.add_column(lang, justify="right")
    for m in SHOWN:
        cells = [s["overall"][m]["mean"], *(s["by_slice"]["language"][lang][m]["mean"] for lang in langs)]
        table.add_row(m, *("–" if v is None else f"{v:.2f}" for v in cells))
    Console().print(table)
    for p in problems[:20]:
        console.print(f"[red]✗[/] {p}")


cases_app = typer.Typer(help="Build eval cases.", no_args_is_help=True)
eval_app.add_typer(cases_app, name="cases")


@cases_app.command("from-feedback")
def from_feedback(out: Path = typer.Option(Path("evals/cases/feedback.jsonl"), "--out", help="Cases file to append to."),
                  heavy_edit: float = typer.Option(0.4, "--heavy-edit", min=0, max=1,
                                                   help="Edits changing more than this share of a draft count as rejections.")) -> None:
    """Turn rejected and heavily edited drafts (POST /v1/feedback) into regression cases."""
    from api.feedback import FeedbackStore, to_case
    from api.settings import get_settings
    from evals.cases import Case

    db = get_settings().data_dir / "feedback.sqlite3"
    if not db.is_file():
        console.print(f"[red]error:[/] no feedback yet ({db} does not exist)")
        raise typer.Exit(2)
    known = set()
    if out.is_file():
        known = {json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines() if line.strip()}
    new = [to_case(item) for item in FeedbackStore(db).regressions(heavy_edit)]
    new = [Case.model_validate(c).model_dump(mode="json") for c in new if c["id"] not in known]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for case in new:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    console.print(f"{len(new)} new case(s) in {out} ({len(known)} already there); review their labels before relying on them")
