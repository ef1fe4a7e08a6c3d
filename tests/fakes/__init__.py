"""Hand-written, in-memory fakes of the contexts' ports, for use case tests without a database.

Each fake unit of work runs over a ``MemoryDatabase`` (memory.py) so that it behaves like the SQL
one wherever a use case could tell: its writes are invisible to others until it commits, leaving
without committing undoes them, a row written by one transaction makes another writer wait, and a
tenant sees only its own rows. The suites in tests/contracts run each fake against its real
adapter; a behaviour they do not cover is not promised.
"""
