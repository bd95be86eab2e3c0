"""Taste stage: collaborative vectors learned from ratings, and the hybrid vectors a "for you" row searches."""
