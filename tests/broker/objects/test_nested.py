"""broker.objects.nested (one query for a page's nested rows) against the ORM's own serialisation."""

from datetime import datetime

import sqlalchemy as sa

import models
from broker.access.auth import Principal
from broker.objects.nested import read_nested
from broker.runtime import db


def _world(s, tag: str):
    """A user in group A (not B), an object saved to both (one save at a whole second, one not), an
    annotation shared with A and one shared with B only, two thumbnails (new, ref)."""
    user = models.User(username=f"nested-{tag}", first_name="Ada", last_name="L")
    ga, gb = models.Group(name=f"nested-a-{tag}"), models.Group(name=f"nested-b-{tag}")
    obj = models.Obj(id=f"nested-{tag}", ra=10.0, dec=20.0, healpix=0)
    s.add_all([user, ga, gb, obj])
    s.flush()
    s.add(models.GroupUser(group_id=ga.id, user_id=user.id))
    saves = [models.Source(obj_id=obj.id, group_id=ga.id, saved_by_id=user.id, active=True,
                           saved_at=datetime(2026, 1, 2, 3, 4, 5)),
             models.Source(obj_id=obj.id, group_id=gb.id, saved_by_id=None, active=True,
                           saved_at=datetime(2026, 1, 2, 3, 4, 6, 120034))]
    notes = [models.Annotation(obj_id=obj.id, origin="a-origin", data={"score": 0.5, "tags": ["x"]},
                               author_id=user.id),
             models.Annotation(obj_id=obj.id, origin="b-origin", data={"score": 1e-7}, author_id=None)]
    thumbs = [models.Thumbnail(obj_id=obj.id, type="new", survey="ZTF", alert_id=1,
                               created_at=datetime(2026, 1, 1, 0, 0, 0)),
              models.Thumbnail(obj_id=obj.id, type="ref", survey="ZTF", alert_id=2, public_url="/x.png",
                               created_at=datetime(2026, 1, 1, 0, 0, 0, 1))]
    s.add_all(saves + notes + thumbs)
    s.flush()
    s.execute(models.group_annotations.insert(), [{"group_id": ga.id, "annotation_id": notes[0].id},
                                                 {"group_id": gb.id, "annotation_id": notes[1].id}])
    return user, ga, gb, obj, saves, notes, thumbs


def test_nested_rows_equal_the_orm_serialisation_and_keep_each_callers_visibility(session_factory):
    with session_factory() as s, s.begin():
        user, ga, gb, obj, saves, notes, thumbs = _world(s, "one")
        admin = Principal(user_id=0, username="root", token_id="t", permissions=frozenset({"System admin"}))
        member = Principal(user_id=user.id, username=user.username, token_id="t", permissions=frozenset())
        author = {"id": user.id, "username": user.username, "first_name": "Ada", "last_name": "L"}

        def save(src, group):
            return {**group.to_dict(), "active": True, "requested": False, "saved_at": src.saved_at.isoformat(),
                    "saved_by": author if src.saved_by_id else None, "saved_by_id": src.saved_by_id}

        def note(a, groups, by):
            return {**a.to_dict(), "groups": [g.to_dict() for g in groups], "author": by, "type": "source"}

        got = read_nested(s, admin, [obj.id, "no-such-object"], ["groups", "annotations", "thumbnails"])
        assert got["groups"][obj.id] == [save(saves[0], ga), save(saves[1], gb)]
        assert got["groups"][obj.id][0]["saved_at"] == "2026-01-02T03:04:05"  # as isoformat: no fraction
        assert got["groups"][obj.id][1]["saved_at"] == "2026-01-02T03:04:06.120034"
        assert got["annotations"][obj.id] == [note(notes[0], [ga], author), note(notes[1], [gb], None)]
        assert got["thumbnails"][obj.id] == [t.to_dict() for t in thumbs]
        assert got["thumbnails"][obj.id][1]["created_at"] == "2026-01-01T00:00:00.000001"
        assert all(v == [] for kind in got.values() for k, v in kind.items() if k == "no-such-object")

        mine = read_nested(s, member, [obj.id], ["groups", "annotations"])
        assert mine["groups"][obj.id] == [save(saves[0], ga)]  # group B's save is not the member's
        assert mine["annotations"][obj.id] == [note(notes[0], [ga], author)]  # B's annotation unseen
        s.rollback()


def test_prepared_statements_survive_rollbacks_and_new_connections(engine):
    """fetch(prepare=True) answers as the unprepared statement does, after a rollback (a PREPARE is not
    undone by one) and on a connection opened after the pool was emptied (which has none prepared)."""
    from sqlalchemy.orm import Session

    sql = "SELECT relname FROM pg_class WHERE relname = ANY(%(names)s) ORDER BY relname"
    params = {"names": ["objs", "sources", "no-such-table"]}
    with Session(engine) as s:
        plain = db.fetch(s, sql, params)
        assert [r[0] for r in plain] == ["objs", "sources"]
        assert db.fetch(s, sql, params, prepare=True) == plain
        s.rollback()
        assert db.fetch(s, sql, params, prepare=True) == plain
        assert db.fetch(s, sql, {"names": []}, prepare=True) == []
        modulo = "SELECT 7 %% 4 WHERE 'ab' LIKE 'a%%' AND %(x)s"  # a literal % in a prepared statement
        assert db.fetch(s, modulo, {"x": True}, prepare=True) == db.fetch(s, modulo, {"x": True}) == [(3,)]
        assert s.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar() >= 1
    engine.dispose()
    with Session(engine) as s:
        assert db.fetch(s, sql, params, prepare=True) == plain


def test_one_visibility_text_serves_every_caller(session_factory):
    """The visibility conditions are made once, with the caller's id as a parameter: two members of
    different groups, through the same statement text, each see their own group's save only."""
    from broker.access.auth import caller_sql
    from broker.objects.nested import visible_obj_sql

    text = visible_obj_sql()
    assert "%(uid)s" in text and "734219053" not in text
    with session_factory() as s, s.begin():
        user, ga, gb, obj, saves, notes, thumbs = _world(s, "two")
        other = models.User(username="nested-other-two")
        s.add(other)
        s.flush()
        s.add(models.GroupUser(group_id=gb.id, user_id=other.id))
        s.flush()
        first = Principal(user_id=user.id, username=user.username, token_id="t", permissions=frozenset())
        second = Principal(user_id=other.id, username=other.username, token_id="t", permissions=frozenset())
        def prepared():
            return s.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar()

        assert [g["id"] for g in read_nested(s, first, [obj.id], ["groups"])["groups"][obj.id]] == [ga.id]
        before = prepared()
        assert [g["id"] for g in read_nested(s, second, [obj.id], ["groups"])["groups"][obj.id]] == [gb.id]
        assert prepared() == before  # the second caller ran the first one's prepared statement
        s.rollback()
    import pytest

    with pytest.raises(ValueError):
        caller_sql(lambda p: models.Obj.id == str(-p.user_id), models.Obj.__table__)
