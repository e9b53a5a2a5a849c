"""Every benchmark figure in one command: project / floor / ratio, each against its goal.

Usage::

    .venv/bin/python bench/run_all.py [--prefix NAME] [--only TEXT]

Runs ``bench_api.py``, ``bench_exports.py``, ``bench_enrollment.py``, ``bench_qlq_rescore.py``
and ``bench_migrate.py`` one after the other (each in its own process, as each sets up Django
on its own database): ``<prefix>`` (default ``trialdesk_bench``) is the database of the API and
export benchmarks, ``<prefix>_enrol`` that of concurrent enrollment, ``<prefix>_qlq`` that of
the rescoring benchmark; each is created, migrated and filled on first use. Then prints
every figure again in one table. Method and recorded figures: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SCRIPTS = ("bench_api.py", "bench_exports.py", "bench_enrollment.py", "bench_qlq_rescore.py",
           "bench_migrate.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="trialdesk_bench",
                        help="database name prefix (default trialdesk_bench)")
    parser.add_argument("--only", default="", help="run only scripts whose name contains it")
    args = parser.parse_args()
    base = "postgres://postgres@127.0.0.1:5432/"
    env = dict(os.environ, BENCH_DATABASE_URL=base + args.prefix,
               BENCH_ENROL_DATABASE_URL=base + args.prefix + "_enrol",
               BENCH_QLQ_DATABASE_URL=base + args.prefix + "_qlq")
    from common import Figure

    figures = []
    for script in SCRIPTS:
        if args.only not in script:
            continue
        print(f"== {script}", flush=True)
        run = subprocess.run([sys.executable, str(HERE / script)], env=env, cwd=HERE.parent,
                             capture_output=True, text=True)
        print(run.stdout, end="")
        for line in run.stderr.splitlines():
            if line.startswith("FIGURE "):
                figures.append(Figure(**json.loads(line.removeprefix("FIGURE "))))
        if run.returncode:
            print(run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{script} failed ({run.returncode})")
    print("\n== all figures (ratios: medians of interleaved rounds; absolute times depend on "
          "the load of the machine)")
    print(f"{'measure':<46} {'project':>14} / {'floor':>12} = ratio")
    for figure in figures:
        print(figure.line())


if __name__ == "__main__":
    main()
