"""Sandbox partners: small local servers playing outside services for tests and benchmarks."""
