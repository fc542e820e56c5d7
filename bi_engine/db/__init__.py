"""The only code that writes SQL: connection helpers, migrations and small repositories."""
