"""The worker side: analytics, AI teams, the job pipeline. Depends on bi_engine, never back."""
