"""Prompt templates (YAML files a person edits) and their renderer."""
