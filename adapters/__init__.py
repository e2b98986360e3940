"""One adapter per partner system: speaks its native API and nothing else."""
