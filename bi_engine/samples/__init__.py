"""The bundled sample submissions (process log, n8n executions, sales series, dataset)."""
