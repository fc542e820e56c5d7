"""Callbacks to ``callback_url``: signing, the SSRF guard and enqueueing delivery jobs."""
