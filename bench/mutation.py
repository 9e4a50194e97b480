"""Mutation testing as a habit: run mutmut on the modules whose tests must stay sharp and
print the kill rate of each.

    pip install -e '.[dev,mutation]'
    python bench/mutation.py                 # all targets in [tool.mutmut] only_mutate
    python bench/mutation.py core/workdays.py --max-children 2
    python bench/mutation.py --report        # only summarise the last run

mutmut copies the project to ``mutants/`` (ignored by git), first runs the selected tests
once to learn which tests reach which function, then runs only those tests against each
mutant. Which modules are mutated and which tests are run is configured in
``[tool.mutmut]`` in pyproject.toml. PostgreSQL variants are not run (the variable
``DUTYBOT_TEST_DATABASE_URL`` is removed for the run): a mutant's fate does not depend
on the database.

Exit status: 0 when every target reaches ``--goal`` (default 0.0, so only a broken run
fails), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# mutmut's meaning of a test run's exit code (mutmut/stats.py).
KILLED = {1, 3, 37}
SURVIVED = {0}
TIMEOUT = {36, 24, -24, 152, 255}
NO_TESTS = {5, 33}


def configured_targets() -> list[str]:
    """The modules listed in ``[tool.mutmut] only_mutate``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def module_of(path: str) -> str:
    """``core/workdays.py`` -> ``core.workdays``."""
    return path.removesuffix(".py").replace("/", ".")


def run_mutmut(targets: list[str], max_children: int | None) -> int:
    """Run ``mutmut run`` for the mutants of ``targets``; returns mutmut's exit status."""
    env = {k: v for k, v in os.environ.items() if k != "DUTYBOT_TEST_DATABASE_URL"}
    mutmut = Path(sys.executable).with_name("mutmut")
    cmd = [str(mutmut), "run"]
    if max_children:
        cmd += ["--max-children", str(max_children)]
    cmd += [f"{module_of(t)}*" for t in targets]
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def tally(target: str) -> Counter[str]:
    """Count the mutants of ``target`` by outcome from ``mutants/<target>.meta``."""
    meta = ROOT / "mutants" / (target + ".meta")
    counts: Counter[str] = Counter()
    if not meta.exists():
        return counts
    codes = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
    for code in codes.values():
        if code in KILLED:
            counts["killed"] += 1
        elif code in SURVIVED:
            counts["survived"] += 1
        elif code in TIMEOUT:
            counts["timeout"] += 1
        elif code in NO_TESTS:
            counts["no tests"] += 1
        elif code is None:
            counts["not checked"] += 1
        else:
            counts["other"] += 1
    return counts


def kill_rate(counts: Counter[str]) -> float | None:
    """Killed (timeouts count as killed: the mutant hung the tests) over all checked."""
    checked = sum(v for k, v in counts.items() if k != "not checked")
    return None if checked == 0 else (counts["killed"] + counts["timeout"]) / checked


def report(targets: list[str], goal: float) -> int:
    """Print a line per target; returns 1 if any target is under ``goal``."""
    status = 0
    print(f"{'module':28} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} "
          f"{'no tests':>8} {'rate':>6}")
    for target in targets:
        counts = tally(target)
        rate = kill_rate(counts)
        total = sum(counts.values())
        shown = "  n/a" if rate is None else f"{rate:6.1%}"
        print(f"{target:28} {total:7} {counts['killed']:7} {counts['timeout']:7} "
              f"{counts['survived']:8} {counts['no tests']:8} {shown}")
        if rate is None or rate < goal:
            status = 1
    print("survivors: `mutmut results`, one in detail: `mutmut show <name>`")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="modules to mutate (default: pyproject's only_mutate)")
    parser.add_argument("--max-children", type=int, default=None, help="parallel mutant runs")
    parser.add_argument("--report", action="store_true", help="only summarise the last run")
    parser.add_argument("--goal", type=float, default=0.0, help="fail below this kill rate, e.g. 0.9")
    args = parser.parse_args(argv)
    targets = args.targets or configured_targets()
    if not args.report:
        code = run_mutmut(targets, args.max_children)
        if code not in (0, 1):   # 1: some mutants survived, which the report shows
            print(f"mutmut failed with exit status {code}", file=sys.stderr)
            return code
    return report(targets, args.goal)


if __name__ == "__main__":
    sys.exit(main())
