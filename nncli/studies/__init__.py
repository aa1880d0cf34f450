"""Many runs of one config: seed studies, sweep files, the Optuna search and its executors."""
