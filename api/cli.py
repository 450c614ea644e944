"""The `tactful` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from evals.cli import eval_app

app = typer.Typer(help="tactful: guarded reply drafts for support teams.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)
out = Console(soft_wrap=True, highlight=False)  # findings: one line each on stdout, colour only on a terminal


@app.command()
def serve(host: str = typer.Option(None, help="Default: TACTFUL_HOST or 127.0.0.1"),
          port: int = typer.Option(None, help="Default: TACTFUL_PORT or 8000"),
          workers: int = typer.Option(None, min=1, help="Default: TACTFUL_WORKERS or 1")) -> None:
    """Start the HTTP API (and the embedded LLM unless TACTFUL_LLM_BASE_URL is set)."""
    import uvicorn

    from api import logs
    from api.app import create_app
    from api.local_llm import LocalLLMError
    from api.settings import get_settings

    settings = get_settings()
    workers = workers or settings.workers
    host, port = host or settings.host, port or settings.port
    if settings.uses_local_llm:
        if workers > 1:
            console.print("[red]error:[/] several workers need an external LLM (set TACTFUL_LLM_BASE_URL); "
                          "with the embedded model each worker would start its own copy on the same port")
            raise typer.Exit(2)
    logs.configure(settings.log_format, settings.log_level)  # log_config=None: uvicorn keeps to our handler
    if settings.uses_local_llm:
        logging.getLogger("tactful").info("starting the embedded model %s (set TACTFUL_LLM_BASE_URL to use another "
                                          "OpenAI-compatible endpoint)", settings.local_model)
    # open mode is announced by the app itself at startup, in every worker's log
    try:
        if workers > 1:  # each worker process builds its own app from the same TACTFUL_ settings
            uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None)
        else:
            uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
    except LocalLLMError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)


@app.command()
def ingest(path: Path = typer.Argument(..., help="A knowledge file or a folder (read recursively)."),
           brand: str = typer.Option(..., "--brand", "-b", help="Brand the documents belong to."),
           prune: bool = typer.Option(False, "--prune", help="Also remove documents whose file is no longer in PATH.")) -> None:
    """Load voice guides and FAQs into a brand's knowledge base. Unchanged documents are not rewritten."""
    from api.settings import get_settings
    from knowledge.documents import BRAND_RULE, brand_ok
    from knowledge.ingest import collect, ingest as run_ingest
    from knowledge.store import KnowledgeStore
    from prompts.tokens import seed_tiktoken_cache

    if not brand_ok(brand):
        console.print(f"[red]error:[/] --brand must be {BRAND_RULE}")
        raise typer.Exit(2)
    settings = get_settings()
    seed_tiktoken_cache(settings.data_dir / "tiktoken")
    store = KnowledgeStore(settings)
    total = len(collect(path)[0]) if path.exists() else 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting into {brand}", total=total)
        report = run_ingest(store, brand, path, progress=lambda _doc: progress.advance(task), prune=prune)
    for problem in report.problems:
        console.print(f"[red]error:[/] {escape(str(problem))}")
    console.print(report.summary(brand))
    if report.problems:
        raise typer.Exit(1)


@app.command()
def check(paths: list[str] = typer.Argument(None, help="Files or folders of saved replies (.txt, .md, .yaml), or - for stdin."),
          message: str = typer.Option(None, "--message", "-m", help="The customer's message the replies answer (decides seriousness)."),
          language: str = typer.Option(None, "--language", "-l", help="Default: detected per reply."),
          brand: str = typer.Option(None, "--brand", "-b", help="Apply this brand's policy (what only warns)."),
          output_format: str = typer.Option("text", "--format", "-f", help="text (one line per finding) or json."),
          jsonl: bool = typer.Option(False, "--jsonl", help="Machine mode: JSON Lines in on stdin, one result per line out.")) -> None:
    """Lint replies for minimising, blame and humour-on-serious. Exit 1 when any finding blocks."""
    from guardrails.lint import LintError, Located, check_reply, files_to_lint, lint_file

    if output_format not in ("text", "json"):
        console.print("[red]error:[/] --format must be text or json")
        raise typer.Exit(2)
    if jsonl:
        raise typer.Exit(_check_jsonl(check_reply, brand))

    located: list[Located] = []
    problems: list[str] = []
    targets = paths or ["-"]
    try:
        files = [p for p in targets if p != "-"]
        for path in files_to_lint([Path(p) for p in files]):
            try:
                located.extend(lint_file(path, message, language, brand))
            except LintError as exc:
                problems.append(str(exc))
        if "-" in targets:
            text = sys.stdin.read()
            result = check_reply(text, message, language, brand)
            from guardrails.lint import Piece, locate

            located.extend(locate("<stdin>", text, Piece(text, 0, 0), f) for f in result.findings)
    except LintError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    blocking = sum(1 for item in located if item.finding.severity == "block")
    if output_format == "json":
        print(json.dumps({"passed": not blocking and not problems, "findings": [x.as_dict() for x in located],
                          "errors": problems}, ensure_ascii=False, indent=2))
    else:
        for item in located:
            f = item.finding
            colour = "red" if f.severity == "block" else "yellow"
            hint = f" (suggest: \"{escape(f.suggestion)}\")" if f.suggestion else " (suggest: delete it)" if f.suggestion == "" else ""
            out.print(f"{item.path}:{item.line}:{item.col}: [{colour}]{f.severity}[/] {f.rule} \"{escape(f.match)}\": "
                      f"{escape(f.message)}{hint}", markup=True)
        for problem in problems:
            console.print(f"[red]error:[/] {escape(problem)}")
        console.print(f"{len(located)} findings, {blocking} blocking" + (f", {len(problems)} files unreadable" if problems else ""))
    raise typer.Exit(1 if blocking or problems else 0)


class InvalidLine(ValueError):
    """A JSON Lines input line that is not what the mode reads: says which field and why."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _jsonl_item(line: str, required: str, optional: tuple[str, ...]) -> dict:
    """One input line as an object whose `required` field is a string and whose `optional` ones are
    strings or null."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidLine(f"not JSON: {exc}", required) from exc
    if not isinstance(item, dict) or not isinstance(item.get(required), str):
        raise InvalidLine(f"expected an object with a string \"{required}\"", required)
    for field in optional:
        if not isinstance(item.get(field), (str, type(None))):
            raise InvalidLine(f"\"{field}\" must be a string or null, not {type(item[field]).__name__}", field)
    return item


def _check_jsonl(check_reply, brand: str | None) -> int:
    """One result per input line, in order; a bad line gets an error object, never a crash."""
    blocked = False
    write = sys.stdout.write
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            item = _jsonl_item(line, "text", ("message", "language", "brand"))
            result = check_reply(item["text"], item.get("message"), item.get("language"), item.get("brand", brand)).as_dict()
        except InvalidLine as exc:
            result = {"error": {"code": "invalid_line", "message": f"line {n}: {exc}", "field": exc.field}}
        blocked |= result.get("passed") is False
        write(json.dumps(result, ensure_ascii=False) + "\n")
    return 1 if blocked else 0


@app.command()
def analyze(message: str = typer.Argument(None, help="The customer's message (omit with --jsonl)."),
            language: str = typer.Option(None, "--language", "-l"),
            jsonl: bool = typer.Option(False, "--jsonl", help="Machine mode: JSON Lines in, one triage per line out.")) -> None:
    """Triage a customer's message: language, seriousness, sentiment, recommended action."""
    from guardrails.triage import analyze as run_analyze

    if jsonl:
        for n, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                item = _jsonl_item(line, "message", ("language",))
                result = run_analyze(item["message"], language=item.get("language")).model_dump()
            except InvalidLine as exc:
                result = {"error": {"code": "invalid_line", "message": f"line {n}: {exc}", "field": exc.field}}
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    if not message:
        console.print("[red]error:[/] give a message, or use --jsonl")
        raise typer.Exit(2)
    print(run_analyze(message, language=language).model_dump_json(indent=2))


keys_app = typer.Typer(help="API keys, scoped to brands and roles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _keys():
    from api.auth import KeyStore
    from api.settings import get_settings

    return KeyStore(get_settings().data_dir / "keys.sqlite3")


@keys_app.command("create")
def keys_create(brand: list[str] = typer.Option(..., "--brand", "-b", help="A brand this key may use (repeat; '*' for all)."),
                role: list[str] = typer.Option(["suggest"], "--role", "-r", help="suggest, knowledge:write or admin (repeat)."),
                name: str = typer.Option("", "--name", help="Who or what uses it.")) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    try:
        key, key_id = _keys().create(brand, role, name)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    console.print(f"created {key_id} for brands {', '.join(brand)} with roles {', '.join(role)}; it is shown only now:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Every key's id, brands, roles and whether it is revoked (never the key itself)."""
    for k in _keys().list():
        print(f"{k['id']}\t{','.join(k['brands'])}\t{','.join(k['roles'])}\t{k['name']}\t{'revoked ' + k['revoked'] if k['revoked'] else 'active'}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id: its next request gets 401."""
    if not _keys().revoke(key_id):
        console.print(f"[red]error:[/] no active key {key_id!r} (see `tactful keys list`)")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


prompts_app = typer.Typer(help="List, show and render prompt templates.", no_args_is_help=True)
app.add_typer(prompts_app, name="prompts")
app.add_typer(eval_app, name="eval")


@prompts_app.command("list")
def prompts_list() -> None:
    from prompts.templates import list_templates

    for t in list_templates():
        print(f"{t.name}\tv{t.version}\t{t.description.strip()}")


@prompts_app.command("check")
def prompts_check(directory: Path = typer.Option(None, "--dir", help="Templates folder (default: prompts/)."),
                  context: int = typer.Option(None, "--context", help="Model context window in tokens (default TACTFUL_LOCAL_LLM_CTX).")) -> None:
    """Lint every template: loads, renders, fits the context window, and its own wording passes the guardrails."""
    from api.settings import get_settings
    from prompts.lint import lint_all
    from prompts.templates import TEMPLATE_DIR

    results = lint_all(directory or TEMPLATE_DIR, context or get_settings().local_llm_ctx)
    for name, problems in results.items():
        out.print(f"[green]ok[/]   {name}" if not problems else f"[red]fail[/] {name}")
        for problem in problems:
            out.print(f"     {escape(problem)}")
    raise typer.Exit(1 if any(results.values()) else 0)


@prompts_app.command("show")
def prompts_show(name: str) -> None:
    from prompts.templates import load

    print(json.dumps(load(name).model_dump(), indent=2, ensure_ascii=False))


@prompts_app.command("render")
def prompts_render(name: str,
                   message: str = typer.Option(None, "--message", "-m", help="A customer's message: triage, retrieval and "
                                               "budgets run as in /v1/suggest, and the messages the LLM would get are shown."),
                   brand: str = typer.Option("acme", "--brand", "-b", help="With --message: whose knowledge base."),
                   channel: str = typer.Option("twitter", "--channel", help="With --message: twitter, email, chat, ..."),
                   visibility: str = typer.Option("public", "--visibility", help="With --message: public or private."),
                   language: str = typer.Option(None, "--language", "-l", help="With --message: reply language (default: detected)."),
                   variables: Path = typer.Option(None, "--vars", help="Or: a JSON file with the template's variables.")) -> None:
    """Show exactly the chat messages a template gives the LLM, with token counts."""
    from prompts.templates import PromptError, load

    if (message is None) == (variables is None):
        console.print("[red]error:[/] give a customer's message with --message, or the variables with --vars FILE")
        raise typer.Exit(2)
    try:
        template = load(name)
        if variables is not None:
            rendered = {"prompt": f"{template.name}@{template.version}",
                        "messages": template.render(json.loads(variables.read_text()))}
        else:
            rendered = _render_for_message(template, message, brand, channel, visibility, language)
    except PromptError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    except (ValueError, OSError) as exc:  # a request /v1/suggest would refuse, a --vars file missing or not JSON
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2)
    print(json.dumps(rendered, indent=2, ensure_ascii=False))


def _render_for_message(template, message: str, brand: str, channel: str, visibility: str, language: str | None) -> dict:
    """The front of the suggest pipeline (triage, plan, retrieve, budget, render), no LLM call."""
    import asyncio

    from api.pipeline import Services
    from api.prompting import budget, render, retrieve
    from api.schemas import SuggestRequest
    from api.settings import get_settings
    from guardrails.triage import analyze
    from knowledge.store import KnowledgeStore, UnknownBrand
    from prompts.segments import plan_for
    from prompts.tokens import ENCODING, count_tokens

    if template.purpose != "suggest":
        raise ValueError(f"{template.name} is a {template.purpose} template; --message renders suggest templates, "
                         f"use --vars FILE for it")
    try:
        req = SuggestRequest(brand=brand, message=message, channel=channel, visibility=visibility, language=language, n=1)
    except ValidationError as exc:
        raise ValueError("; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    settings = get_settings()
    store = KnowledgeStore(settings)
    if brand not in store.brands():
        raise ValueError(f"brand {brand!r} has no knowledge base in {settings.data_dir}; run `make ingest` first")
    triage = analyze(message, language=language)
    plan = plan_for(triage, visibility)
    head = {"prompt": f"{template.name}@{template.version}", "triage": {
        "language": triage.language, "serious": triage.serious, "categories": triage.categories, "action": triage.action}}
    if plan is None:
        return {**head, "messages": [], "note": "no reply is drafted for this message (do_not_engage), so the LLM gets nothing"}
    svc = Services(settings=settings, store=store, llm=None)  # nothing is generated
    try:
        faqs, voice = asyncio.run(retrieve(req, triage, template, svc))
    except UnknownBrand:
        raise ValueError(f"brand {brand!r} has no knowledge base; run `make ingest` first") from None
    faqs, voice = budget(template, faqs, voice)
    messages = render(template, req, triage, plan, faqs, voice)
    counted = [{**m, "tokens": count_tokens(m["content"])} for m in messages]
    return {**head, "knowledge": [{"id": h.id, "score": h.score} for h in faqs], "messages": counted,
            "prompt_tokens": sum(m["tokens"] for m in counted), "max_tokens": template.params.max_tokens,
            "tokens_counted_with": ENCODING}


if __name__ == "__main__":
    app()
