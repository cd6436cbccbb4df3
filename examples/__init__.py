"""Sample trial specs and the code that builds the sample candidate models."""
