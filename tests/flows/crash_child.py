"""Run one retrain flow in this process (the parent kills it mid-run)."""

from __future__ import annotations

import sys
from datetime import date

from prefect import tags

from flows.retrain import retrain_flow

if __name__ == "__main__":
    tag, as_of, rows = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3])
    with tags(tag):
        retrain_flow(model="fraud-detector", as_of=as_of, rows=rows)
