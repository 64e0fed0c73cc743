"""Packaging cnngrade for others: otter-grader and Gradescope autograders, the student bundle."""
