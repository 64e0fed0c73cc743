"""`python -m cnngrade` runs the command line."""
import sys

from cnngrade.cli import main

sys.exit(main())
