"""Windowed aggregation over event time, as pure domain logic: no client imports.

The seams: `spec` (what a window is), `alignment` (where tumbling and hopping windows start, in the
business time zone), `aggregates` (the accumulators, each mergeable for session merges),
`watermarks` (event-time progress per partition, idle partitions and the wall clock),
`state` (a key's open windows and the changelog encoding that makes them durable), `plan` (the
compiled query), `rows` (the output rows and HAVING) and `operator` (records in; updates,
finals, retractions and changelog changes out, once per batch).
"""
