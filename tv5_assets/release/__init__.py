"""What readers are served: which release each serving store was built from, and how far it lags the
newest source seen. Sits at the end of the imports (it reads every stage's asset keys, never the reverse)."""
