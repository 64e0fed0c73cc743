"""Trusted training: the reference networks, the recipe, cohorts and the profiles ex6 and ex8 are graded on."""
