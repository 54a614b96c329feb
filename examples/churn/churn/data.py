"""Seeded synthetic customer data for the churn example (`python -m churn.data`).

Pure Python plus pyarrow, so the example needs nothing beyond seaway's own dependencies.
`drift` shifts the distributions (older customers, higher charges, more churn), which the
monitoring work later uses to show drift being caught.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

REGIONS = ("north", "south", "east", "west")
CONTRACTS = ("monthly", "yearly", "two-year")


def customers_table(
    rows: int = 5000, *, seed: int = 0, drift: float = 0.0, start_id: int = 1
) -> Any:
    import pyarrow as pa

    rng = random.Random(seed)
    ids, tenure, charges, region, contract, support, churned = [], [], [], [], [], [], []
    for i in range(rows):
        t = min(72, int(rng.expovariate(1 / (24 + 12 * drift))))
        c = round(max(18.0, rng.gauss(65 + 15 * drift, 25)), 2)
        reg = REGIONS[min(3, int(rng.random() * 4))]
        con = rng.choices(CONTRACTS, weights=(0.55 + 0.1 * drift, 0.25, 0.2))[0]
        calls = min(10, int(rng.expovariate(1 / (1.5 + drift))))
        z = (
            -1.0
            - 0.05 * t
            + 0.02 * (c - 65)
            + 0.35 * calls
            + (0.9 if con == "monthly" else -0.6)
            + (0.3 if reg == "south" else 0.0)
            + 0.5 * drift
        )
        p = 1 / (1 + math.exp(-z))
        ids.append(start_id + i)
        tenure.append(t)
        charges.append(c)
        region.append(reg)
        contract.append(con)
        support.append(calls)
        churned.append(1 if rng.random() < p else 0)
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "tenure": pa.array(tenure, pa.int64()),
            "monthly_charges": pa.array(charges, pa.float64()),
            "region": pa.array(region, pa.string()),
            "contract": pa.array(contract, pa.string()),
            "support_calls": pa.array(support, pa.int64()),
            "churned": pa.array(churned, pa.int64()),
        }
    )


def write_customers(
    path: Path, rows: int = 5000, *, seed: int = 0, drift: float = 0.0, start_id: int = 1
) -> Path:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = customers_table(rows, seed=seed, drift=drift, start_id=start_id)
    pq.write_table(table, path)
    return path


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write seeded synthetic customer data.")
    parser.add_argument("path", nargs="?", default="data/customers.parquet")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", type=float, default=0.0, help="shift the distributions")
    args = parser.parse_args()
    write_customers(Path(args.path), args.rows, seed=args.seed, drift=args.drift)


if __name__ == "__main__":
    main()
