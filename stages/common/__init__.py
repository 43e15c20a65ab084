"""Pieces shared by the stages: params, IDX files, atomic writes, the CLI frame, the models."""
