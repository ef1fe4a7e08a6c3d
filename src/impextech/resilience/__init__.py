"""Resilience: timeouts, retries and circuit breakers around outside calls."""
