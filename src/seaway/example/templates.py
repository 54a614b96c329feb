"""Files `seaway init` writes."""

from __future__ import annotations

SEAWAY_YAML = """\
# seaway.yaml: what this project versions, trains, gates and delivers.
# `seaway validate` checks this file; `seaway schema` prints its JSON Schema for editors.
name: {name}

# Where metadata and blobs live. These are the defaults: a SQLite file and a local folder
# under .seaway/. Teams point metadata at PostgreSQL and artifacts at s3://bucket/prefix.
store:
  metadata: sqlite:///.seaway/seaway.db
  artifacts: .seaway/objects

datasets:
  customers:
    path: data/customers.parquet
    description: one row per customer, with whether they churned
    checks:
      - {{column: customer_id, type: int, not_null: true, unique: true}}
      - {{column: tenure, type: int, min: 0, max: 72}}
      - {{column: monthly_charges, min: 0}}
      - {{column: region, allowed: [north, south, east, west]}}
      - {{column: contract, regex: '^(monthly|yearly|two-year)$'}}
      - {{column: churned, allowed: [0, 1]}}
      - {{rows: {{min: 1000}}}}
      - name: no negative charges
        sql: select count(*) = 0 from data where monthly_charges < 0
"""

ENVIRONMENT_YAML = """\
# environments/{env}.yaml: what serves in {env}. `seaway promote` edits this file as a
# git commit; the reconciler makes live state match it.
target: local
self_heal: {self_heal}
deployments: {{}}
"""

GITIGNORE_ENTRY = ".seaway/"
