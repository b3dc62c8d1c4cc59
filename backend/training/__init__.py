"""Training: configuration, the FLAML fit, the worker process and the job manager that watches it."""
