"""Candidate reads that do not grow with the table (issue 13): candidates indexed by (filter_id, passed_at,
obj_id); the (filter, object) pairs kept in ``candidate_filter_objs`` with the pair's latest pass, indexed in
that order, so a page of a filter's list is a slice of one index; the number of objects per filter in
``candidate_counts`` (insert-only deltas, folded by the worker), so totalMatches of a filter is a sum of a
few rows; both maintained by statement triggers on candidates. objs indexed by ra (a sort the candidates
list offers).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 02:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_candidates_filter_passed', 'candidates',
                    ['filter_id', sa.text('passed_at DESC'), 'obj_id'], unique=False)
    # both covered: filter_id leads the new index, obj_id leads uq_candidates_obj_filter_passed
    op.drop_index('ix_candidates_filter_id', table_name='candidates')
    op.drop_index('ix_candidates_obj_id', table_name='candidates')
    op.create_index('ix_objs_ra', 'objs', ['ra'], unique=False)
    op.create_table(
        'candidate_filter_objs',
        sa.Column('filter_id', sa.Integer(), nullable=False),
        sa.Column('obj_id', sa.String(), nullable=False),
        sa.Column('last_passed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('filter_id', 'obj_id', name=op.f('pk_candidate_filter_objs')),
    )
    op.create_index('ix_candidate_filter_objs_latest', 'candidate_filter_objs',
                    ['filter_id', sa.text('last_passed_at DESC'), 'obj_id'], unique=False)
    op.create_table(
        'candidate_counts',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('filter_id', sa.Integer(), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_candidate_counts')),
    )
    op.create_index('ix_candidate_counts_filter_id', 'candidate_counts', ['filter_id'], unique=False)
    op.execute(CREATE_TRIGGERS)
    op.execute("""
        INSERT INTO candidate_filter_objs (filter_id, obj_id, last_passed_at)
        SELECT filter_id, obj_id, max(passed_at) FROM candidates GROUP BY filter_id, obj_id ORDER BY filter_id, obj_id
    """)
    op.execute("""
        INSERT INTO candidate_counts (filter_id, n)
        SELECT filter_id, count(*) FROM candidate_filter_objs GROUP BY filter_id
    """)
    op.execute("ANALYZE candidate_filter_objs")  # (filled here: plans need its statistics at once)


# No foreign keys: the triggers keep both tables (a cascade from objs or filters deletes candidates, whose
# trigger then removes the pairs and counts them out; an FK cascade of its own would remove a pair first and
# lose its -1). The worker drops the counts of deleted filters when it folds them.
# The pair (filter, object) exists while one candidate row of it does, with the latest passed_at of its rows.
# A new pair adds +1 to its filter's count (xmax = 0: the row was inserted, not updated); a pair whose last row
# goes adds -1. ON CONFLICT makes concurrent writers of the same pair count it once (the second waits for the
# first to commit, then finds the pair). Pairs are taken in one order (no deadlocks between writers).
CREATE_TRIGGERS = """
CREATE FUNCTION candidates_pairs_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH latest AS (
        SELECT filter_id, obj_id, max(passed_at) AS passed_at FROM new_rows GROUP BY filter_id, obj_id
    ), upserted AS (
        INSERT INTO candidate_filter_objs AS p (filter_id, obj_id, last_passed_at)
        SELECT filter_id, obj_id, passed_at FROM latest ORDER BY filter_id, obj_id
        ON CONFLICT (filter_id, obj_id) DO UPDATE SET last_passed_at = EXCLUDED.last_passed_at
            WHERE p.last_passed_at < EXCLUDED.last_passed_at
        RETURNING p.filter_id, (p.xmax = 0) AS inserted
    )
    INSERT INTO candidate_counts (filter_id, n)
    SELECT filter_id, count(*) FROM upserted WHERE inserted GROUP BY filter_id;
    RETURN NULL;
END $$;

CREATE FUNCTION candidates_pairs_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM candidate_filter_objs p
        USING (SELECT DISTINCT filter_id, obj_id FROM old_rows) o
        WHERE p.filter_id = o.filter_id AND p.obj_id = o.obj_id
          AND NOT EXISTS (SELECT 1 FROM candidates c WHERE c.obj_id = o.obj_id AND c.filter_id = o.filter_id)
        RETURNING p.filter_id
    )
    INSERT INTO candidate_counts (filter_id, n) SELECT filter_id, -count(*) FROM gone GROUP BY filter_id;
    -- pairs that keep rows: their latest pass may have gone
    UPDATE candidate_filter_objs p SET last_passed_at = m.passed_at
    FROM (SELECT c.filter_id, c.obj_id, max(c.passed_at) AS passed_at
          FROM candidates c JOIN (SELECT DISTINCT filter_id, obj_id FROM old_rows) o
               ON c.filter_id = o.filter_id AND c.obj_id = o.obj_id
          GROUP BY c.filter_id, c.obj_id) m
    WHERE p.filter_id = m.filter_id AND p.obj_id = m.obj_id AND p.last_passed_at <> m.passed_at;
    RETURN NULL;
END $$;

CREATE TRIGGER candidates_pairs_added AFTER INSERT ON candidates
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION candidates_pairs_added();
CREATE TRIGGER candidates_pairs_removed AFTER DELETE ON candidates
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION candidates_pairs_removed();
"""


def downgrade() -> None:
    op.execute("DROP TRIGGER candidates_pairs_removed ON candidates")
    op.execute("DROP TRIGGER candidates_pairs_added ON candidates")
    op.execute("DROP FUNCTION candidates_pairs_removed()")
    op.execute("DROP FUNCTION candidates_pairs_added()")
    op.drop_index('ix_candidate_counts_filter_id', table_name='candidate_counts')
    op.drop_table('candidate_counts')
    op.drop_index('ix_candidate_filter_objs_latest', table_name='candidate_filter_objs')
    op.drop_table('candidate_filter_objs')
    op.drop_index('ix_objs_ra', table_name='objs')
    op.create_index('ix_candidates_obj_id', 'candidates', ['obj_id'], unique=False)
    op.create_index('ix_candidates_filter_id', 'candidates', ['filter_id'], unique=False)
    op.drop_index('ix_candidates_filter_passed', table_name='candidates')
