"""Hostile candidate models: MLflow "models from code" that attack the sandbox they run in.

``hostile_model.py`` is the candidate (its ``attack`` setting picks what it does once loaded
in a sandbox); ``witness_model.py`` is a well-behaved model served by a second, bystander
sandbox so that the tests can show one trial cannot reach or disturb another. ``build.py``
saves both as MLflow model directories. Nothing here acts outside a sandbox: the hostile
code arms itself only when it was loaded from the sandbox's read-only model mount.
"""
