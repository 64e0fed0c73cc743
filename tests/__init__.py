"""Tests of cnngrade itself (a package, so the harness imports as tests.harness)."""
