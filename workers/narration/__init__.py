"""Words for the computed facts: the LLM provider chain and the pattern narrator.

Nothing here imports crewai: the chain calls providers through litellm, and the pattern
narrator writes deterministic business prose, so the engine always has a report to give.
"""
