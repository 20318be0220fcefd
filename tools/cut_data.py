"""Cut the data that ships with swag-lora from the full local copies of the benchmarks.

    .venv/bin/python tools/cut_data.py demo       # src/swag_lora/tasks/packaged/arc-easy/
    .venv/bin/python tools/cut_data.py fixtures   # tests/data/
    .venv/bin/python tools/cut_data.py check      # exit 1 if either differs from what would be written

The full data is read from ``--data DIR``, else ``$SWAG_LORA_DATA``, else ``shared/data`` beside
the checkout (its README lists the formats and licences).

``demo``: the ARC-Easy questions ``swag-lora demo`` draws with its default sizes (train, validation
and test limits of ``DEMO_DEFAULTS``, subset seed 0), found by loading the full data through
``load_task`` exactly as the demo does, and written in the release's Hugging Face layout (one
JSON array per split, records unchanged, file order kept), with ``swag-lora-slice.json``
recording the draw (so the loader serves only the subsets the slice holds exactly) and a
licence note (CC BY-SA 4.0).

``fixtures``: for the test suite on a clone without the full data, every release file of
``shared/data`` (ARC-Easy, ARC-Challenge, OpenBookQA, WinoGrande, MMLU) cut to its first rows,
plus the first row of every number of choices the file has, the rows that tests check by id and,
in ARC-Easy, the demo's questions (so the demo's draws from the fixtures are the packaged slice:
a subset ranks rows one by one, and the fixtures hold the full data's top-ranked rows);
the rows are copied byte for byte (JSON arrays are written one record per line), so every
format quirk of a kept row stays. MMLU keeps all 57 subjects (its dev files whole, a few rows
of each val and test file), so the loader's rule that every subject file must be present is
tested as it is. ``tests/data/MANIFEST.json`` lists each file's rows and the release's rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from swag_lora.tasks import load_task  # noqa: E402
from swag_lora.tasks.mmlu import SUBJECTS  # noqa: E402
from swag_lora.tasks.slices import SLICE_FILE, packaged_data_dir  # noqa: E402

DEMO_TASK = "arc-easy"
DEMO_SPLITS = {"train": "train_limit", "validation": "validation_limit", "test": "test_limit"}
DEMO_SEED = 0
FIXTURES = REPO / "tests" / "data"

# release file -> rows kept from its start (besides the rows below)
FIRST_ROWS = {
    "arc-easy/train.json": 80,
    "arc-easy/validation.json": 40,
    "arc-easy/test.json": 40,
    "arc-challenge/ARC-Challenge-Train.jsonl": 60,
    "arc-challenge/ARC-Challenge-Dev.jsonl": 30,
    "obqa/train.jsonl": 60,
    "obqa/test.jsonl": 30,
    "winogrande/train_xs.jsonl": 40,
    "winogrande/train_s.jsonl": 40,
    "winogrande/train_m.jsonl": 40,
    "winogrande/train_l.jsonl": 40,
    "winogrande/dev.jsonl": 40,
    **{f"mmlu/dev/{s}_dev.csv": None for s in SUBJECTS},  # None: the whole file (5 rows)
    **{f"mmlu/val/{s}_val.csv": 3 for s in SUBJECTS},
    **{f"mmlu/test/{s}_test.csv": 4 for s in SUBJECTS},
}
# rows that tests/test_tasks_data.py checks by id
KEEP_IDS = {
    "arc-easy/test.json": {"NYSEDREGENTS_2015_8_28", "TIMSS_1995_8_P4"},
    "arc-challenge/ARC-Challenge-Dev.jsonl": {"NYSEDREGENTS_2014_8_20", "NYSEDREGENTS_2014_4_4", "TIMSS_2003_8_pg29"},
    "obqa/train.jsonl": {"7-980"},
}
COPIED = ["mmlu/README.txt"]  # the release's own note, unchanged

LICENCES = {
    "arc-easy": ("AI2 Reasoning Challenge (ARC), Easy set: Clark et al. 2018, \"Think you have Solved Question "
                 "Answering? Try ARC, the AI2 Reasoning Challenge\", arXiv:1803.05457", "CC BY-SA 4.0"),
    "arc-challenge": ("AI2 Reasoning Challenge (ARC), Challenge set: Clark et al. 2018, arXiv:1803.05457",
                      "CC BY-SA 4.0"),
    "obqa": ("OpenBookQA, main: Mihaylov et al. 2018, \"Can a Suit of Armor Conduct Electricity? A New Dataset for "
             "Open Book Question Answering\", EMNLP", "Apache-2.0"),
    "winogrande": ("WinoGrande: Sakaguchi et al. 2020, \"WinoGrande: An Adversarial Winograd Schema Challenge at "
                   "Scale\", AAAI", "CC-BY"),
    "mmlu": ("MMLU: Hendrycks et al. 2021, \"Measuring Massive Multitask Language Understanding\", ICLR "
             "(mmlu/README.txt is the release's note)", "MIT"),
}


def full_data(given: str | None) -> Path:
    for candidate in (given, os.environ.get("SWAG_LORA_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate, DEMO_TASK).is_dir():
            return Path(candidate)
    sys.exit("no full data: pass --data DIR or set SWAG_LORA_DATA (a folder like shared/data)")


# --- records of each format, with their raw text ------------------------------------------------


def records(path: Path) -> list[tuple[str, dict | list]]:
    """(raw text, parsed record) for every record of a release file, in file order."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [(json.dumps(r, ensure_ascii=False), r) for r in json.loads(text)]
    if path.suffix == ".jsonl":
        return [(line, json.loads(line)) for line in text.splitlines(keepends=True) if line.strip()]
    lines = io.StringIO(text, newline="").readlines()
    out, reader, start = [], csv.reader(iter(lines)), 0
    for row in reader:  # a quoted field may span lines: cut at the reader's line count
        out.append(("".join(lines[start:reader.line_num]), row))
        start = reader.line_num
    return out


def write_records(path: Path, raw: list[str]) -> str:
    if path.suffix == ".json":
        return "[\n" + ",\n".join(raw) + "\n]\n"
    return "".join(raw)


def record_id(record) -> str | None:
    if isinstance(record, dict):
        return record.get("id") or record.get("qID")
    return None


def n_choices(record) -> int:
    if isinstance(record, list):
        return len(record) - 2
    choices = record.get("choices") or record.get("question", {}).get("choices") or ()
    return len(choices["text"]) if isinstance(choices, dict) else len(choices) or 2


def cut(path: Path, first: int | None, keep_ids: set[str]) -> list[str]:
    items = records(path)
    if first is None:
        return [raw for raw, _ in items]
    chosen = set(range(min(first, len(items))))
    seen_counts = {n_choices(r) for i, (_, r) in enumerate(items) if i in chosen}
    for i, (_, record) in enumerate(items):
        count = n_choices(record)
        if count not in seen_counts or record_id(record) in keep_ids:
            chosen.add(i)
            seen_counts.add(count)
    missing = keep_ids - {record_id(items[i][1]) for i in chosen}
    if missing:
        sys.exit(f"{path}: rows {sorted(missing)} not found")
    return [items[i][0] for i in sorted(chosen)]


# --- the two products --------------------------------------------------------------------------


def demo_draws(data: Path) -> dict:
    """split -> (limit, the draw from the full data), as ``swag-lora demo`` loads them."""
    from swag_lora.cli.demo import DEMO_DEFAULTS  # the demo's own defaults, so the two cannot drift

    out = {}
    for split, key in DEMO_SPLITS.items():
        limit = DEMO_DEFAULTS[key]
        out[split] = limit, load_task(DEMO_TASK, split, data, source="local", limit=limit, subset_seed=DEMO_SEED)
    return out


def demo_files(data: Path) -> dict[Path, str]:
    folder = packaged_data_dir() / DEMO_TASK
    splits, out = {}, {}
    for split, (limit, drawn) in demo_draws(data).items():
        source = Path(drawn.source.removeprefix("local:"))
        wanted = {row.id for row in drawn}
        raw = [text for text, record in records(source) if record["id"] in wanted]
        kept = [json.loads(text)["id"] for text in raw]
        assert kept == [row.id for row in drawn], f"{split}: the slice must hold the draw's rows in its order"
        out[folder / source.name] = write_records(source, raw)
        splits[split] = {"file": source.name, "rows": len(raw), "release_rows": drawn.available, "limit": limit}
    record = {
        "format": 1,
        "task": DEMO_TASK,
        "subset_seed": DEMO_SEED,
        "splits": splits,
        "what": "the questions swag-lora demo draws with its default sizes, cut from the full release files "
                "by tools/cut_data.py demo",
        "licence": LICENCES[DEMO_TASK][1],
        "source": LICENCES[DEMO_TASK][0],
    }
    out[folder / SLICE_FILE] = json.dumps(record, indent=2) + "\n"
    sizes = ", ".join(f"{v['rows']} of {v['release_rows']:,} {s}" for s, v in splits.items())
    out[folder / "README.md"] = DEMO_README.format(sizes=sizes, source=LICENCES[DEMO_TASK][0])
    return out


DEMO_README = """# ARC-Easy questions for `swag-lora demo`

The AI2 Reasoning Challenge, Easy set, questions that `swag-lora demo` draws from the full data
with its default sizes (subset seed 0):

{sizes} questions,

in the release's Hugging Face layout (one JSON array per split, one record per line; records
unchanged, in file order).
`swag-lora-slice.json` records the draw: the loader serves from this folder only subsets it holds
exactly (the same or smaller sizes, subset seed 0), so results equal those on the full data, and
refuses anything else.

Made by `tools/cut_data.py demo` from the full release files.

Source: {source}.

Questions © Allen Institute for AI, licensed under the Creative Commons
Attribution-ShareAlike 4.0 International licence (CC BY-SA 4.0,
https://creativecommons.org/licenses/by-sa/4.0/). Changes: a subset of the rows was selected; the
rows themselves are unchanged. This folder is shared under the same licence.
"""


def fixture_files(data: Path) -> dict[Path, str]:
    out, manifest = {}, {}
    keep = {name: set(ids) for name, ids in KEEP_IDS.items()}
    for _, drawn in demo_draws(data).values():  # the demo's questions too: its draws on the fixtures are the slice
        name = str(Path(drawn.source.removeprefix("local:")).relative_to(data))
        keep.setdefault(name, set()).update(row.id for row in drawn)
    for name, first in FIRST_ROWS.items():
        raw = cut(data / name, first, keep.get(name, set()))
        out[FIXTURES / name] = write_records(data / name, raw)
        manifest[name] = {"rows": len(raw), "release_rows": len(records(data / name))}
    for name in COPIED:
        out[FIXTURES / name] = (data / name).read_text(encoding="utf-8")
    out[FIXTURES / "MANIFEST.json"] = json.dumps({"made_by": "tools/cut_data.py fixtures", "files": manifest},
                                                 indent=1) + "\n"
    lines = [f"| `{task}/` | {source} | {licence} |" for task, (source, licence) in LICENCES.items()]
    out[FIXTURES / "README.md"] = FIXTURE_README.format(table="\n".join(lines))
    return out


FIXTURE_README = """# Test fixtures: the benchmark files, cut short

The test suite reads these when the full data (`$SWAG_LORA_DATA`, or `shared/data` beside the
checkout) is absent, or always with `SWAG_LORA_FORCE_FIXTURES=1`. Every folder and file has the
name and format of the release copy in `shared/data` (see its README), cut to its first rows
plus the rows tests check by id, one row of every number of choices the file has and, in
`arc-easy/`, the questions `swag-lora demo` draws; rows are copied unchanged (JSON arrays are
written one record per line). MMLU keeps all 57 subjects. `MANIFEST.json` lists each file's rows
and the release's rows; tests that check release sizes check these instead.

Made by `tools/cut_data.py fixtures`. Sources and licences (each folder is shared under its
source's licence; changes: rows were selected, not edited):

| folder | source | licence |
|---|---|---|
{table}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["demo", "fixtures", "check"])
    parser.add_argument("--data", default=None, help="the full data root (default $SWAG_LORA_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    data = full_data(args.data)
    files = {**demo_files(data), **fixture_files(data)} if args.what == "check" else (
        demo_files(data) if args.what == "demo" else fixture_files(data))
    if args.what == "check":
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"differs: {path.relative_to(REPO)}")
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {os.path.commonpath([str(p) for p in files])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
