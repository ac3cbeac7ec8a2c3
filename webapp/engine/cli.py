"""`flask segment count|members DEFINITION.json [--at ISO-DATETIME]`."""
from flask.cli import AppGroup

segment_cli = AppGroup("segment", help="Evaluate segment definitions.")
