"""Segment versions (issue 18): every save of a segment's definition keeps one.

- `segment_version`: per segment, numbered from 1: the definition, the type
  and the "Recompute every" minutes as saved, who saved and when, and the
  size at the first run finished after the save (null until then).
- Each existing segment gets its current definition as version 1 (its size
  and last computation as that version's).
"""

import datetime

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class Segment(Model):
        definition = TextField()
        type = CharField()
        interval_minutes = IntegerField(null=True)
        size = IntegerField(null=True)
        computed_at = DateTimeField(null=True)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "segment"

    class SegmentVersion(Model):
        segment = ForeignKeyField(Segment, on_delete="CASCADE", index=False)
        number = IntegerField()
        definition = TextField()
        type = CharField()
        interval_minutes = IntegerField(null=True)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField()
        # from a restore: the number of the version restored
        restored_from = IntegerField(null=True)
        size = IntegerField(null=True)
        computed_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "segment_version"
            indexes = ((("segment", "number"), True),)

    db.create_tables([SegmentVersion])
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    rows = [
        {
            "segment": s.id,
            "number": 1,
            "definition": s.definition,
            "type": s.type,
            "interval_minutes": s.interval_minutes,
            "created_by": s.created_by_id,
            "created_at": s.updated_at or now,
            "size": s.size,
            "computed_at": s.computed_at,
        }
        for s in Segment.select()
    ]
    for start in range(0, len(rows), 500):
        SegmentVersion.insert_many(rows[start : start + 500]).execute()
