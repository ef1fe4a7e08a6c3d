"""Sandbox partners: small local servers that play outside services for tests, demos and benchmarks."""
