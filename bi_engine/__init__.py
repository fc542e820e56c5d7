"""BI Engine: a Postgres-native job engine for multi-agent business analyses."""

__version__ = "0.1.0"
