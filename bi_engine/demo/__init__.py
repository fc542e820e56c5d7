"""``bi-engine demo``: the whole engine on one machine with zero configuration."""
