"""The API benchmark (bench/api/run.py); each module here is also a standalone script."""
