"""Evaluation packs for chat candidates: versioned item files, each folder with its manifest.yaml."""
