"""cnngrade: an autograder for a course week on convolutional neural networks."""

__version__ = "0.1.0"
