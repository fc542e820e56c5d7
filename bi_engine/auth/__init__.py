"""Authentication: the PilotProOS backend's JWTs and job-scoped stream tokens."""
