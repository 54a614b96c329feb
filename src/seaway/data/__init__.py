"""Versioned datasets: content-addressed snapshots, workspace status, diff, checkout, checks."""
