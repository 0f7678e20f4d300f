"""The records table: docs/records.md's one table, rendered from docs/records/*.json.

    python bench/records.py            # rewrite the table between the markers in docs/records.md
    python bench/records.py --check    # exit 1 if a record is malformed or the table is stale

Each JSON file is one measured result and the one place its figures live: `date`, `commit` (where
the command reproduces it), `machine` (short) and `machine_detail`, `command`, `what`, `headline`
(label -> figure, the table's column), optional `figures` and `notes`, and `source` (how the figures
came to be written down). The table shows the headline and links the file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "records"
TABLE = ROOT / "docs" / "records.md"
START, END = "<!-- records: start -->", "<!-- records: end -->"
REQUIRED = ("id", "date", "commit", "machine", "machine_detail", "command", "what", "headline")


def load() -> list[dict]:
    """Every record, newest date first, then by id (which groups a day's records by kind)."""
    records = [json.loads(path.read_text()) for path in sorted(RECORDS.glob("*.json"))]
    records.sort(key=lambda r: r.get("id", ""))
    return sorted(records, key=lambda r: r.get("date", ""), reverse=True)


def problems(records: list[dict]) -> list[str]:
    """What is wrong with the records: missing keys, an id that is not its file's name, a date
    that is not its id's."""
    found = []
    names = {path.stem for path in RECORDS.glob("*.json")}
    for r in records:
        missing = [key for key in (*REQUIRED, "source") if not r.get(key)]
        if missing:
            found.append(f"{r.get('id', '?')}: missing {', '.join(missing)}")
            continue
        if r["id"] not in names:
            found.append(f"{r['id']}: not the name of its file")
        if not r["id"].startswith(r["date"] + "-"):
            found.append(f"{r['id']}: the id does not start with its date {r['date']}")
        if not re.fullmatch(r"[0-9a-f]{7,40}", r["commit"]):
            found.append(f"{r['id']}: commit {r['commit']!r} is not a hash")
    return found


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(records: list[dict]) -> str:
    lines = [
        "| date | commit | machine | what | command | headline | record |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        headline = "; ".join(f"{label} {value}" for label, value in r["headline"].items())
        lines.append(
            "| "
            + " | ".join(
                [
                    r["date"],
                    f"`{r['commit']}`",
                    cell(r["machine"]),
                    cell(r["what"]),
                    f"`{cell(r['command'])}`",
                    cell(headline),
                    f"[{r['id']}](records/{r['id']}.json)",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def with_table(text: str, table: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if malformed or stale")
    args = parser.parse_args(argv)
    records = load()
    found = problems(records)
    for problem in found:
        print(f"docs/records: {problem}", file=sys.stderr)
    if found:
        return 1
    text = TABLE.read_text()
    new = with_table(text, render(records))
    if args.check:
        if new != text:
            print("docs/records.md is stale: run python bench/records.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(new)
    print(f"docs/records.md: {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
