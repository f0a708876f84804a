#!/usr/bin/env bash
# One benchmark over several commits in a single run, so that the machine's load is the same for
# all (docs/performance.md compares rows only within one run): each commit is exported with
# `git archive` into a folder of its own that shares this checkout's .venv, and the command runs
# in each folder in turn, ROUNDS times (2 by default). `{rev}` and `{round}` in the command are
# replaced, to name a JSON file per run (give it an absolute path: each runs in its own folder).
# SAME_FILES="bench/x.py ..." copies those files from this checkout into every export, so that
# every commit is measured by the same script.
#
#     bash bench/compare_commits.sh "58a1621 d1a08ba HEAD" \
#         .venv/bin/python -m generation.bench --overhead --size 512 --batch 32 --repeats 3 \
#         --json "$PWD/var/bench/overhead-{rev}-{round}.json"
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
revs=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for rev in $revs; do
    mkdir -p "$work/$rev"
    git archive "$rev" | tar -x -C "$work/$rev"
    ln -sfn "$here/.venv" "$work/$rev/.venv"
    for file in ${SAME_FILES:-}; do
        cp "$here/$file" "$work/$rev/$file"
    done
done
for round in $(seq "${ROUNDS:-2}"); do
    for rev in $revs; do
        command=("${@//\{rev\}/$rev}")
        command=("${command[@]//\{round\}/$round}")
        echo "== $rev, round $round"
        (cd "$work/$rev" && "${command[@]}")
    done
done
