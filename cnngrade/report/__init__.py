"""Presentation of grading records: JSON reports, CSV gradebooks (and, later, HTML and LMS formats)."""
