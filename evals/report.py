"""A run (or a comparison) as JSON for machines, JUnit XML for CI, Markdown for a pull request,
and one standalone HTML file (inline SVG charts, a filterable table, no network) for people."""

from __future__ import annotations

import html
import json
from pathlib import Path
from xml.etree import ElementTree as ET

from evals.metrics import HARD, METRICS

SHOWN = ("guardrail_pass", "clean_first_time", "action_correct", "rsr_complete", "language_match", "within_channel",
         "no_private_data_public", "avoids_must_not", "intents_covered", "cites_expected_faq")


def write_all(run: dict, out_dir: Path, problems: list[str], comparison: dict | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "run.json", "junit": out_dir / "junit.xml", "markdown": out_dir / "summary.md",
             "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(run, ensure_ascii=False, indent=1), encoding="utf-8")
    paths["junit"].write_text(junit(run), encoding="utf-8")
    paths["markdown"].write_text(markdown(run, problems, comparison), encoding="utf-8")
    paths["html"].write_text(page(run, problems, comparison), encoding="utf-8")
    return paths


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(run: dict, problems: list[str], comparison: dict | None = None) -> str:
    s = run["summary"]
    lines = [f"## tactful eval: {s['cases']} cases, prompt `{run['config']['prompt']}`, model `{run['config'].get('model') or 'default'}`",
             "", f"**{'PASS' if not problems else 'FAIL'}**" + (f": {len(problems)} problem(s)" if problems else ""), ""]
    lines += [f"- {p}" for p in problems[:20]]
    langs = list(s["by_slice"]["language"])
    lines += ["", "| metric | all | " + " | ".join(langs) + " |", "|---|---:|" + "---:|" * len(langs)]
    for m in SHOWN:
        row = [_fmt(s["overall"][m]["mean"])] + [_fmt(s["by_slice"]["language"][lang][m]["mean"]) for lang in langs]
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    lat = s["overall"]["latency_ms"]
    lines += ["", f"Latency p50 {lat['p50']} ms, p95 {lat['p95']} ms; {s['overall']['tokens']['mean']} completion tokens per suggestion."]
    if comparison:
        lines += ["", comparison_markdown(comparison)]
    return "\n".join(lines) + "\n"


def comparison_markdown(c: dict) -> str:
    lines = [f"### {c['a'].get('label') or c['a']['prompt']} → {c['b'].get('label') or c['b']['prompt']}: "
             f"{c['wins']} wins, {c['ties']} ties, {c['losses']} losses over {c['pairs']} paired cases", "",
             "| metric | change | 95 % interval | n |", "|---|---:|---:|---:|"]
    for m, v in c["metrics"].items():
        if v["n"]:
            lines.append(f"| {m} | {v['delta']:+.3f} | [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}] | {v['n']} |")
    if c["flipped"]:
        lines += ["", "Flipped cases:"] + [f"- `{f['id']}`: " + ", ".join(f"{m} {a:.2f}→{b:.2f}" for m, (a, b) in f["changed"].items())
                                          for f in c["flipped"][:15]]
    return "\n".join(lines)


def junit(run: dict) -> str:
    """One testcase per case; a hard metric below 1 or a wrong action is a failure."""
    suite = ET.Element("testsuite", name="tactful-eval", tests=str(len(run["results"])))
    failures = 0
    for r in run["results"]:
        case = ET.SubElement(suite, "testcase", classname=f"eval.{r['slices']['language']}", name=f"{r['id']}#{r['repeat']}",
                             time=f"{r['latency_ms'] / 1000:.3f}")
        bad = [f"{m}={r['scores'][m]:.2f}" for m in (*HARD, "action_correct") if r["scores"].get(m) is not None and r["scores"][m] < 1]
        if "error" in r["response"]:
            bad.append(f"error: {r['response']['error']}")
        if bad:
            failures += 1
            ET.SubElement(case, "failure", message="; ".join(bad)).text = r["message"]
    suite.set("failures", str(failures))
    return ET.tostring(suite, encoding="unicode")


def _bars(title: str, values: dict[str, float | None], deltas: dict[str, tuple[float, float, float]] | None = None) -> str:
    """A horizontal bar chart as inline SVG: one bar per metric (0..1), or per delta with its interval."""
    rows = [(k, v) for k, v in values.items() if v is not None]
    h = 22 * len(rows) + 30
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="560" height="{h}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>']
    for i, (k, v) in enumerate(rows):
        y = 24 + i * 22
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(k)}</text>')
        if deltas:
            d, lo, hi = deltas[k]
            mid, scale = 380, 160
            x0, x1 = (mid, mid + d * scale) if d >= 0 else (mid + d * scale, mid)
            parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1, x1 - x0):.1f}" height="14" fill="{"#2a7" if d >= 0 else "#c44"}"/>')
            parts.append(f'<line x1="{mid + lo * scale:.1f}" x2="{mid + hi * scale:.1f}" y1="{y + 7}" y2="{y + 7}" stroke="#000"/>')
            parts.append(f'<line x1="{mid}" x2="{mid}" y1="{y - 2}" y2="{y + 16}" stroke="#888"/>')
            parts.append(f'<text x="{mid + 170}" y="{y + 12}" font-size="11">{d:+.3f}</text>')
        else:
            parts.append(f'<rect class="bar" x="200" y="{y}" width="{v * 300:.1f}" height="14" fill="#37a"/>')
            parts.append(f'<text x="{205 + v * 300:.1f}" y="{y + 12}" font-size="11">{v:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _judged(v: dict) -> str:
    """The judge's verdict and reason under a draft."""
    tone = {True: "tone ok", False: "tone not ok"}.get(v.get("tone_ok"), "")
    grounded = {True: "claims supported", False: "unsupported: " + "; ".join(v.get("unsupported") or [])}.get(v.get("supported"), "")
    said = ", ".join(p for p in (f"empathy {v['empathy']}/5" if v.get("empathy") else "", tone, grounded) if p)
    return f'<br><small class="judge">judge: {html.escape(said)}. {html.escape(v.get("reason") or "")}</small>' if said else ""


def page(run: dict, problems: list[str], comparison: dict | None = None) -> str:
    s = run["summary"]
    charts = [_bars("All cases", {m: s["overall"][m]["mean"] for m in SHOWN})]
    for key in ("language", "type"):
        for value, means in s["by_slice"][key].items():
            charts.append(_bars(f"{key} = {value}", {m: means[m]["mean"] for m in SHOWN}))
    if comparison:
        charts.insert(0, _bars(f"B − A ({comparison['wins']} wins, {comparison['ties']} ties, {comparison['losses']} losses)",
                               {m: 0.0 for m, v in comparison["metrics"].items() if v["n"]},
                               {m: (v["delta"], *v["ci95"]) for m, v in comparison["metrics"].items() if v["n"]}))
    rows = []
    for r in run["results"]:
        resp = r["response"]
        verdicts = resp.get("judge") or []
        drafts = "".join(f"<li>{html.escape(d['text'])}" + (f"<br><i>private:</i> {html.escape(d['private'])}" if d.get("private") else "")
                         + (_judged(verdicts[i]) if i < len(verdicts) else "") + "</li>"
                         for i, d in enumerate(resp.get("drafts") or []))
        blocked = "".join(f"<li>{html.escape(b['text'])} <small>{html.escape(', '.join(f['rule'] for f in b['findings']))}</small></li>"
                          for b in resp.get("blocked") or [])
        failing = [m for m in METRICS if r["scores"].get(m) is not None and r["scores"][m] < 1 and m not in ("blocked_rate", "repaired_rate")]
        triage = resp.get("triage") or {}
        rows.append(f'<tr data-lang="{r["slices"]["language"]}" data-type="{r["slices"]["type"]}" data-fail="{"1" if failing else "0"}">'
                    f'<td>{html.escape(r["id"])}</td><td>{html.escape(r["message"])}</td>'
                    f'<td>{html.escape(str(triage.get("action")))}<br><small>{html.escape("; ".join(triage.get("reasons") or []))}</small></td>'
                    f'<td><ul>{drafts}</ul>{"<b>blocked</b><ul>" + blocked + "</ul>" if blocked else ""}</td>'
                    f'<td>{html.escape(", ".join(failing)) or "✓"}</td></tr>')
    verdict = "PASS" if not problems else f"FAIL ({len(problems)})"
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>tactful eval: {verdict}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td{{border-top:1px solid #ddd;padding:4px;vertical-align:top;max-width:420px}}
.charts{{display:flex;flex-wrap:wrap;gap:1em}}.fail{{color:#c44}}</style>
<h1>tactful eval <span class="{'fail' if problems else ''}">{verdict}</span></h1>
<p>{s['cases']} cases, prompt <code>{html.escape(run['config']['prompt'])}</code>, model <code>{html.escape(str(run['config'].get('model') or 'default'))}</code>, started {run['started']}.</p>
<ul>{''.join(f'<li class="fail">{html.escape(p)}</li>' for p in problems[:30])}</ul>
<div class="charts">{''.join(charts)}</div>
<h2>Cases</h2>
<p><label>language <select id="lang"><option value="">all</option>{''.join(f'<option>{v}</option>' for v in s['by_slice']['language'])}</select></label>
<label>type <select id="type"><option value="">all</option>{''.join(f'<option>{v}</option>' for v in s['by_slice']['type'])}</select></label>
<label><input type="checkbox" id="fail"> only cases below 1 on a metric</label> <span id="count"></span></p>
<table id="cases"><tr><th>case</th><th>message</th><th>triage</th><th>drafts</th><th>below 1</th></tr>{''.join(rows)}</table>
<script>
const f=()=>{{const l=lang.value,t=type.value,x=fail.checked;let n=0;
for(const r of document.querySelectorAll('#cases tr[data-lang]')){{const ok=(!l||r.dataset.lang==l)&&(!t||r.dataset.type==t)&&(!x||r.dataset.fail=='1');r.hidden=!ok;n+=ok}}
count.textContent=n+' shown'}};for(const e of [lang,type,fail])e.onchange=f;f();
</script></html>"""
