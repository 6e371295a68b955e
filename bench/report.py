"""The engine table in docs/architecture.md and the bar chart next to engines.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ENGINES_JSON = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "engines.json"

START = "<!-- engines-table:start -->"
END = "<!-- engines-table:end -->"


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def _install(install: dict) -> str:
    if "compile_s" in install:
        note = "" if install.get("compile_measured") else ", reported"
        return f"{install['compile_s'] / 60:.0f} min compile{note}"
    if "install_s" in install:
        return f"{install['install_s']:.0f} s ({install['wheels_mb']:.0f} MB wheels)"
    return "—"


def render_table(report: dict) -> str:
    rows = [
        "| engine | weights | install | conversion | load | single stream | 16 streams, aggregate "
        "| 16 streams, p95 TTFT | peak RSS | agreement with fp32 | exact | instructions "
        "| how 16 streams are served |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, r in report["engines"].items():
        name = r.get("label", key)
        if key == report["default_engine"]:
            name = f"**{name}**"
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error'].splitlines()[-1][:80]} |" + " |" * 11)
            continue
        single, conc, quality = r["single_stream"], r["concurrent"], r.get("quality", {})
        rows.append(
            "| "
            + " | ".join(
                [
                    name,
                    r["weights"],
                    _install(r.get("install", {})),
                    f"{r['conversion']['total_s']:.0f} s",
                    f"{r['load_s']:.1f} s",
                    f"{single['tokens_per_s']:.0f} tok/s",
                    f"{conc['aggregate_tokens_per_s']:.0f} tok/s",
                    f"{conc['ttft_p95_s']:.2f} s",
                    f"{r['peak_rss_mb']:.0f} MB",
                    _num(quality.get("mean_prefix_agreement"), "{:.0%}"),
                    _num(quality.get("exact_match_rate"), "{:.0%}"),
                    _num(quality.get("instruction_pass_rate"), "{:.0%}"),
                    r["concurrency_mode"],
                ]
            )
            + " |"
        )
    machine = report["machine"]
    rows += [
        "",
        f"Measured {report['date'][:10]} by `make bench` on {machine['cpu']}, {machine['cores']} "
        f"cores, {machine['threads_per_engine']} threads per engine, no GPU; full figures in "
        "[benchmarks/engines.json](benchmarks/engines.json), chart in "
        "[benchmarks/engines.png](benchmarks/engines.png). Default engine vs llama.cpp, single "
        f"stream: **{_num(report['default_vs_llamacpp_single_stream'], '{:.2f}')}×**; default "
        "engine at 16 concurrent streams vs llama.cpp single stream: "
        f"**{_num(report['default_concurrency16_vs_llamacpp_single_stream'], '{:.2f}')}×**. "
        "Agreement = mean fraction of the fp32 reference's first 64 greedy tokens reproduced "
        "before the first divergence; instructions = our own verifiable-instruction checks.",
    ]
    return "\n".join(rows)


def update_architecture_doc(path: Path, table: str) -> None:
    """Replace what is between the markers; create the section if the file or markers are new."""
    block = f"{START}\n{table}\n{END}"
    if path.exists() and START in path.read_text():
        text = path.read_text()
        pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
        path.write_text(pattern.sub(lambda _: block, text, count=1))
        return
    text = path.read_text() if path.exists() else "# tandem — architecture\n"
    path.write_text(f"{text.rstrip()}\n\n## Engines\n\n{block}\n")


def write_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = {k: r for k, r in report["engines"].items() if "error" not in r}
    labels = [r["label"].replace(" (", "\n(").replace(", ", ",\n") for r in ok.values()]
    single = [r["single_stream"]["tokens_per_s"] for r in ok.values()]
    conc = [r["concurrent"]["aggregate_tokens_per_s"] for r in ok.values()]
    xs = range(len(ok))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar([x - 0.2 for x in xs], single, width=0.4, label="single stream")
    ax.bar([x + 0.2 for x in xs], conc, width=0.4, label="16 concurrent streams (aggregate)")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("generated tokens / s")
    ax.set_title(f"SmolLM2-135M-Instruct on {report['machine']['cores']} CPU cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def record_figures(figures: dict[str, Any], command: str, path: Path = ENGINES_JSON) -> None:
    """Put headline figures another bench measures (IFEval runs, long chats, format quality)
    into engines.json beside the engine table's own, each with the command that measured it.
    `bench.engines` keeps them when it rewrites the file (`carried_figures`)."""
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(figures)
    sources = report.setdefault("figure_sources", {})
    sources.update(dict.fromkeys(figures, command))
    path.write_text(json.dumps(report, indent=2) + "\n")


def carried_figures(path: Path = ENGINES_JSON) -> dict[str, Any]:
    """The figures `record_figures` put into the current engines.json, with their sources."""
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    sources = report.get("figure_sources", {})
    carried: dict[str, Any] = {k: report[k] for k in sources if k in report}
    return carried | {"figure_sources": sources} if carried else {}
