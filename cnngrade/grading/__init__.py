"""Grading: the trusted process per student that runs the grader tests, and their scoring."""
