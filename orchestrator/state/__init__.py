"""Where deployments are recorded."""
