# expect: zero
"""Ends the worker process outright while being imported."""
import os

os._exit(0)
