"""The benchmark report's text sections: what has been run, the validation tuning, the
SWAG-exploration study, and the wall time."""

from __future__ import annotations

from collections import defaultdict

from ..report.format import method_order

__all__ = [
    "FIELD_METHODS",
    "field_setup",
    "status_section",
    "study_section",
    "swag_start_section",
    "timing_section",
    "tuning_section",
]


def tuning_section(tuning: dict) -> str:
    if not tuning:
        return "Not run yet.\n"
    parts = []
    for task, t in tuning.items():
        rates = list(t["by_learning_rate"])
        scales = list(next(iter(t["by_learning_rate"].values()))["swag"])
        parts.append(f"**{task}** (seed {t['seed']}, {t['n_validation']} validation questions, S = {t['n_samples']} "
                     f"shared draws per scale). MAP: NLL {t['map']['nll']:.3f}, ECE {t['map']['ece']:.3f}, "
                     f"acc {t['map']['acc']:.3f}.\n")
        head = "| SWAG lr | SWA NLL / ECE | " + " | ".join(f"scale {s}" for s in scales) + " |"
        lines = [head, "|" + "---|" * (2 + len(scales))]
        for lr in rates:
            p = t["by_learning_rate"][lr]
            cells = [f"{p['swag'][s]['nll']:.3f} / {p['swag'][s]['ece']:.3f}" for s in scales]
            lines.append(f"| {lr} | {p['swa']['nll']:.3f} / {p['swa']['ece']:.3f} | " + " | ".join(cells) + " |")
        c = t["choice"]
        parts.append("\n".join(lines) + "\n\n(cells: validation NLL / ECE.) Chosen: SWAG lr "
                     f"{c['swag_learning_rate']:g}, swag-tuned scale {c['scale']:g} (validation NLL "
                     f"{c['validation_nll']:.3f}).\n")
    return "\n".join(parts)


def timing_section(unit_seconds: dict) -> str:
    if not unit_seconds:
        return "No unit timed yet.\n"
    by_task, by_seed = defaultdict(float), defaultdict(float)
    for name, s in unit_seconds.items():
        parts = name.split("/")
        by_task[parts[0]] += s
        if len(parts) > 1 and parts[1].startswith("seed"):
            by_seed["/".join(parts[:2])] += s
    lines = ["| unit | minutes |", "|---|---|"]
    lines += [f"| {name} | {s / 60:.1f} |" for name, s in unit_seconds.items()]
    total = sum(unit_seconds.values())
    summary = ", ".join(f"{t} {s / 3600:.2f} h" for t, s in by_task.items())
    seeds = ", ".join(f"{k} {s / 60:.0f} min" for k, s in by_seed.items())
    return (f"Total {total / 3600:.2f} h of wall time on 2 CPU cores ({summary}). Per (task, seed), training "
            f"and evaluation (the tuning seed also trains every SWAG rate): {seeds}. The tuning's validation "
            "passes and the zero-shot and combined units are listed separately.\n\n" + "\n".join(lines) + "\n")


FIELD_METHODS = ("tfb", "blob", "blob-mean", "ivon", "ivon-mean")  # the field's Bayesian-LoRA methods


def field_setup(records, cfg: dict) -> list[str]:
    """The setup line of BLoB, IVON and TFB, when the results hold any of them (else none)."""
    if not any(r["method"] in FIELD_METHODS for r in records):
        return []
    settings = lambda key: ", ".join(f"{k} {v}" for k, v in (cfg.get(key) or {}).items()) or "defaults"  # noqa: E731
    return [f"- BLoB, IVON (own runs from fresh LoRA weights, per seed; the MAP phase's epochs) and TFB (on each "
            f"seed's MAP adapter, σ searched on validation): S = {cfg['n_samples']} weight draws each; "
            f"`blob-mean` and `ivon-mean` are the means alone. Settings: BLoB {settings('blob')}; IVON "
            f"{settings('ivon')}; TFB {settings('tfb')} (see docs/design.md for the defaults)."
            + ("" if cfg.get("field_ood", True) else " They are evaluated in-domain only (test and validation), not "
               "on the OOD sets (`field_ood: false`).")]


def status_section(records, config: dict) -> str:
    lines = []
    records = [r for r in records if not r.get("study")]
    for task in config["tasks"]:
        seeds = sorted({r["seed"] for r in records if r["task"] == task and r["seed"] is not None})
        methods = sorted({r["method"] for r in records if r["task"] == task}, key=method_order)
        lines.append(f"- {task}: seeds {seeds or 'none'} of {config['seeds']}; methods "
                     f"{', '.join(methods) or 'none'}.")
    return "\n".join(lines)


def study_section(study: dict) -> str:
    """Per study task: every variant's settings and validation metrics, and the choice."""
    if not study:
        return "Not run yet.\n"
    parts = []
    for task, s in study.items():
        head = ("| variant | optimizer | rate | coll./epoch | K | epochs | iterates | SWAG acc | MAP acc | SWAG NLL | "
                "swag+ts NLL | map+ts NLL | T | SWAG AURC |")
        lines = [head, "|" + "---|" * 14]
        for name, methods in s["variants"].items():
            cfg = s["settings"][name]
            if not methods:
                lines.append(f"| {name} | {cfg['optimizer']} | {cfg['learning_rate']:g} | {cfg['collections_per_epoch']} "
                             f"| {cfg['max_rank']} | {cfg['epochs']:g} | – | diverged | | | | | | |")
                continue
            sw, mp, st, mt = (methods.get(k, {}) for k in ("swag", "map", "swag+ts", "map+ts"))
            lines.append(
                f"| {'**' + name + '**' if s.get('choice') and s['choice']['variant'] == name else name} | "
                f"{cfg['optimizer']} | {cfg['learning_rate']:g} | {cfg['collections_per_epoch']} | {cfg['max_rank']} | "
                f"{cfg['epochs']:g} | {cfg['n_collected']} | {sw['acc']:.3f} | {mp['acc']:.3f} | {sw['nll']:.3f} | "
                f"{st['nll']:.3f} | {mt['nll']:.3f} | {st['temperature']:.2f} | {sw['aurc']:.3f} |")
        choice = s.get("choice")
        chosen = (f"Chosen: **{choice['variant']}** ({choice['rule']})." if choice
                  else "No variant kept SWAG's accuracy within a point of MAP's.")
        waiting = [name for name in s.get("planned", []) if name not in s["variants"]]
        if waiting:
            chosen += (f" **Provisional:** {len(s['variants'])} of {len(s['planned'])} planned variants have run; "
                       f"still to run: {', '.join(waiting)}.")
        parts.append(f"**{task}** (seed {s['seed']}, validation split; temperatures fitted on it, so +ts NLL is each "
                     "predictive's calibrated log-likelihood):\n\n" + "\n".join(lines) + f"\n\n{chosen}\n")
    return "\n".join(parts)


def _best_epoch(curve: list[dict], map_epochs: float) -> str:
    """The MAP phase's epoch with the lowest validation NLL (of the evaluations logged in it)."""
    in_map = [e for e in curve if e["epoch"] <= map_epochs + 1e-9]
    if not in_map:
        return "–"
    best = min(in_map, key=lambda e: e["nll"])
    return f"{best['epoch']:g} of {map_epochs:g}"


def swag_start_section(data: dict) -> str:
    """``bench/swag_start.py``'s comparison: per recipe and seed, the SWAG phase of ``swag-lora
    train`` from the last iterate with the same AdamW (``last``), from the best-validation MAP
    checkpoint (``best``) and on SGD with momentum (``sgd``), each other variant against ``last``."""
    runs = data.get("runs", {})
    if not runs:
        return "Not run yet.\n"
    recipes = data.get("settings", {}).get("recipes", {})
    common = data.get("settings", {}).get("common", {})
    variants = list(data.get("settings", {}).get("variants", {"last": {}, "best": {}}))
    head = ("| recipe | seed | variant | branched | best MAP epoch | MAP acc | SWAG acc | map+ts NLL | SWAG NLL | "
            "swag+ts NLL | Δ swag+ts (− last) |")
    lines = [head, "|" + "---|" * 11]
    order = {name: i for i, name in enumerate(recipes)}

    def place(key: str):  # recipe as listed, then seed, then the variants in the settings' order
        recipe, seed, variant = key.split("/")
        return (order.get(recipe, len(order)), int(seed.removeprefix("seed")),
                variants.index(variant) if variant in variants else len(variants), variant)

    for key in sorted(runs, key=place):
        entry = runs[key]
        recipe, seed, variant = key.split("/")
        m = entry["methods"]
        other = runs.get(f"{recipe}/{seed}/last")
        delta = (f"{m['swag+ts']['nll'] - other['methods']['swag+ts']['nll']:+.3f}"
                 if variant != "last" and other else "")
        branch = (entry.get("branch") or {}).get("from", "last iterate")
        lines.append(f"| {recipe} | {seed.removeprefix('seed')} | {variant} | {branch} | "
                     f"{_best_epoch(entry['validation_curve'], recipes.get(recipe, {}).get('map_epochs', 0))} | "
                     f"{m['map']['acc']:.3f} | {m['swag']['acc']:.3f} | {m['map+ts']['nll']:.3f} | "
                     f"{m['swag']['nll']:.3f} | {m['swag+ts']['nll']:.3f} | {delta} |")
    for recipe, by_variant in data.get("comparisons", {}).items():
        for variant, c in by_variant.items():
            nll, acc = c["swag+ts nll"], c["swag acc"]
            lines.append(f"\n**{recipe}**, {variant} − last over seeds {', '.join(map(str, c['seeds']))} (95% paired "
                         f"bootstrap): swag+ts NLL {nll['diff']:+.3f} [{nll['lo']:+.3f}, {nll['hi']:+.3f}], SWAG "
                         f"accuracy {100 * acc['diff']:+.1f} [{100 * acc['lo']:+.1f}, {100 * acc['hi']:+.1f}] points.")
    sizes = "; ".join(f"{name}: train {r['train']}, validation {r['validation']}, {r['map_epochs']:g} MAP + "
                      f"{r['swag_epochs']:g} SWAG epochs"
                      for name, r in recipes.items())
    return (f"`swag-lora train` runs on {common.get('task', '?')} (the benchmark's seeded subsets), one schedule: "
            "linear decay from "
            f"{common.get('learning_rate', 0):g}, then the SWAG phase at a constant rate; S = "
            f"{common.get('n_samples', '?')}. Recipes: {sizes}. `last` continues from the MAP phase's last iterate "
            f"with the same AdamW at {common.get('swag_learning_rate', 0):g}; `best` (`--swag_from_best`) restarts "
            "from its best-validation checkpoint with fresh optimizer moments; `sgd` (`--swag_optimizer sgd`) "
            "continues from the last iterate on SGD with momentum 0.9 at 0.01. MAP is the run's best-validation "
            "checkpoint over all its evaluations (the SWAG phase's included), as `swag-lora train` records it, so it "
            "can differ between variants. Metrics on the validation split (temperatures fitted on it).\n\n"
            + "\n".join(lines) + "\n")
