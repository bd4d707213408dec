"""Data safety decisions: snapshots and their manifest, schema versions, when to snapshot,
which volumes lose their data with their claims, preview quotas, sleeping previews."""
