"""Pictures of runs and sweeps (matplotlib, an extra) and their terminal summaries."""
