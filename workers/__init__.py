"""The worker side: analytics, AI teams and the job pipeline. Depends on bi_engine, never the reverse."""
