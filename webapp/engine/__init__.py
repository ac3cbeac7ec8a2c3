"""The segment engine: definitions parsed, validated and compiled to SQL.

Imports nothing from Flask: views, jobs, the CLI and the API all call it.
"""
