"""The audit log: listing events and verifying their hash chain."""
