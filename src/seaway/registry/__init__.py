"""Model versions, aliases, flavors, lineage, signing, and the static scan of model files."""
