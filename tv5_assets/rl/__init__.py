"""RL stage: ratings as offline-RL episodes, and one policy record per user."""
