"""Evaluation stage: how well the graph's vectors recommend, measured the way the recommender uses them."""
