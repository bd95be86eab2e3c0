"""Synthetic stage: users' demographics and platform availability, consistent with MovieLens behaviour."""
