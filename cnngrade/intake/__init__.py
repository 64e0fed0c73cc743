"""Intake: what an instructor downloads, turned into one folder of files per student."""
