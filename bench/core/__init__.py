"""The bottom layer: words every unit shares (vocabulary), the error types (errors) and small
file utilities (files). Imports nothing from the other units and nothing heavy (no torch)."""
