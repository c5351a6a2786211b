"""Operations: what an operator runs on the database as a whole.

Backups (create, verify, drill, tiered cleanup, their catalogue), restore of a database with
the erasure replay and the models that survive it, recovery of one table (`recover_table`),
`doctor`, safe migrations (`migrate` with timeouts, the migration operations) and `backfill`.
The top layer: it may stand on every other app; none stands on it.
"""
