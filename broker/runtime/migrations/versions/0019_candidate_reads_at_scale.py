"""Candidate reads that do not grow with the table (issue 13): candidates indexed by (filter_id, passed_at,
obj_id), so a page is read in passed_at order from each filter's index; the (filter, object) pairs kept in
``candidate_filter_objs`` and the number of objects per filter in ``candidate_counts`` (insert-only deltas,
folded by the worker), both maintained by statement triggers on candidates, so totalMatches of a filter is a
sum of a few rows; objs indexed by ra (a sort the candidates list offers).

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
        sa.PrimaryKeyConstraint('filter_id', 'obj_id', name=op.f('pk_candidate_filter_objs')),
    )
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
        INSERT INTO candidate_filter_objs (filter_id, obj_id)
        SELECT DISTINCT filter_id, obj_id FROM candidates ORDER BY filter_id, obj_id
    """)
    op.execute("""
        INSERT INTO candidate_counts (filter_id, n)
        SELECT filter_id, count(*) FROM candidate_filter_objs GROUP BY filter_id
    """)


# No foreign keys: the triggers keep both tables (a cascade from objs or filters deletes candidates, whose
# trigger then removes the pairs and counts them out; an FK cascade of its own would remove a pair first and
# lose its -1). The worker drops the counts of deleted filters when it folds them.
# The pair (filter, object) exists while one candidate row of it does. A new pair adds +1 to its filter's
# count; a pair whose last row goes adds -1. ON CONFLICT makes concurrent writers of the same pair count it
# once (the second waits for the first to commit, then finds the pair). Pairs are taken in one order.
CREATE_TRIGGERS = """
CREATE FUNCTION candidates_pairs_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        INSERT INTO candidate_filter_objs (filter_id, obj_id)
        SELECT DISTINCT filter_id, obj_id FROM new_rows ORDER BY filter_id, obj_id
        ON CONFLICT DO NOTHING
        RETURNING filter_id
    )
    INSERT INTO candidate_counts (filter_id, n) SELECT filter_id, count(*) FROM added GROUP BY filter_id;
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
    op.drop_table('candidate_filter_objs')
    op.drop_index('ix_objs_ra', table_name='objs')
    op.create_index('ix_candidates_obj_id', 'candidates', ['obj_id'], unique=False)
    op.create_index('ix_candidates_filter_id', 'candidates', ['filter_id'], unique=False)
    op.drop_index('ix_candidates_filter_passed', table_name='candidates')
