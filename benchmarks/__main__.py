"""Run every benchmark in its own process; write benchmarks/results/results.json and results.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def run_one(name: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent, capture_output=True,
                          text=True, check=False)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or "no output").strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def to_markdown(results: dict[str, dict[str, object]]) -> str:
    rows = ["| benchmark | key | value |", "|---|---|---|"]
    for name, result in results.items():
        for key, value in result.items():
            shown = f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
            rows.append(f"| {name} | {key} | {shown} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    results = {name: run_one(name) for name in discover()}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(to_markdown(results))
    sys.stdout.write(to_markdown(results))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
