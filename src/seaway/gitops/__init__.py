"""GitOps: environments in git are the desired state; promote writes it, sync makes it so.

- `desired`: environment files read at a git revision (a local branch or a fetched remote);
- `promote`: promotion and rollback as git commits;
- `targets`: where an environment serves (the local gateway, Kubernetes manifests, Ray Serve);
- `reconcile`: plan and apply the difference between git and live state; drift, self-heal;
- `controller`: the reconciler in a loop, with a push webhook and leader election.
"""
