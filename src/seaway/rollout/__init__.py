"""Progressive delivery: canary, blue-green and shadow rollouts and their analysis.

- `records`: the durable rollout rows (phase, step, bookkeeping) and their events;
- `analysis`: judging a candidate's live figures against the environment's limits;
- `engine`: the state machines, advanced by `tick`, and people's pause, resume, abort and
  promote.

The reconciler starts a rollout when git names a new version (`start_rollout`) and ticks
it on every loop; nothing here reads git.
"""
