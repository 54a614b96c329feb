"""Files `seaway init` writes."""

from __future__ import annotations

SEAWAY_YAML = """\
# seaway.yaml: what this project versions, trains, gates and delivers.
# `seaway validate` checks this file; `seaway schema` prints its JSON Schema for editors.
# `seaway init --example` writes a complete example project instead of this skeleton.
name: {name}

# Where metadata and blobs live. These are the defaults: a SQLite file and a local folder
# under .seaway/. Teams point metadata at PostgreSQL and artifacts at s3://bucket/prefix.
store:
  metadata: sqlite:///.seaway/seaway.db
  artifacts: .seaway/objects

datasets: {{}}
  # customers:
  #   path: data/customers.parquet
  #   checks:
  #     - {{column: customer_id, not_null: true, unique: true}}
  #     - {{column: tenure, min: 0}}
"""

ENVIRONMENT_YAML = """\
# environments/{env}.yaml: what serves in {env}. `seaway promote` edits this file as a
# git commit; the reconciler makes live state match it.
target: local
self_heal: {self_heal}
deployments: {{}}
"""

GITIGNORE_ENTRY = ".seaway/"
