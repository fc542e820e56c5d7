"""Thin request handlers: parse, authenticate, call a use case, shape the response."""
