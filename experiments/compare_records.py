#!/usr/bin/env python
"""Does the same seed reproduce a run? Compares two runs' `record.json` (written by run_reproduction.py) field by
field (wall times left out; each run's output folder read as `<output_dir>`, so the stage-1 and model paths are
compared), and writes the verdict as Markdown.

    python experiments/compare_records.py outputs/reproduction/infoxlm-seed1 \
        outputs/reproduction_rerun/infoxlm-seed1 --output experiments/results/rerun_check.md
"""

import argparse
import json
from pathlib import Path

# Wall times differ between two runs of the same seed by design.
SKIPPED_KEYS = {"train_seconds", "eval_seconds", "tokens_per_second"}


def differences(a, b, path: str = "") -> list[str]:
    """Paths (`tatoeba.languages.fra.xlco.xx->en`) where `a` and `b` differ, SKIPPED_KEYS aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{key}: only in one record" for key in sorted((set(a) ^ set(b)) - SKIPPED_KEYS)]
        for key in sorted(set(a) & set(b) - SKIPPED_KEYS):
            found += differences(a[key], b[key], f"{path}.{key}" if path else key)
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries vs {len(b)}"]
        return [diff for i, (x, y) in enumerate(zip(a, b)) for diff in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def count_values(record) -> int:
    if isinstance(record, dict):
        return sum(count_values(value) for key, value in record.items() if key not in SKIPPED_KEYS)
    if isinstance(record, list):
        return sum(count_values(value) for value in record)
    return 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path, help="A run folder holding record.json.")
    parser.add_argument("run_b", type=Path, help="Another run of the same variant and seed.")
    parser.add_argument("--output", type=Path, default=None, help="Markdown file for the verdict.")
    args = parser.parse_args(argv)
    records = []
    for run in (args.run_a, args.run_b):
        if not (run / "record.json").is_file():
            raise SystemExit(f"{run / 'record.json'}: not found; pass the folder of a finished run.")
        # Runs of the same seed in different output folders record their own paths.
        text = (run / "record.json").read_text().replace(str(run.parent.resolve()), "<output_dir>")
        records.append(json.loads(text))
    found = differences(*records)
    a, b = records
    lines = [
        f"# Same seed, run twice: {a['run']} seed {a['seed']}",
        "",
        f"- `{args.run_a}`: trained in {a['train_seconds'] / 60:.1f} min",
        f"- `{args.run_b}`: trained in {b['train_seconds'] / 60:.1f} min",
        f"- {count_values(a):,} recorded values compared (arguments, every logged training value, Tatoeba per "
        "language, pooling and direction, XNLI); wall times left out, each output folder read as `<output_dir>`",
        "",
        "**Identical.**" if not found else f"**{len(found)} difference{'s' * (len(found) > 1)}.**",
        *(f"- {diff}" for diff in found[:50]),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
