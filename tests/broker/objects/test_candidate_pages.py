"""GET /api/candidates read page by page from the per-filter index (broker/objects/candidates.py): every
page equals a brute-force answer computed here from the rows written, including pages that need the stream
to grow past its first limit, several filters, date windows, conditions and other sorts; the per-filter
counts the triggers keep equal the distinct (filter, object) pairs through inserts, deletes and folds."""

import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from broker.objects.candidates import fold_candidate_counts
from tests.broker.ingest.helpers import make_group_with_filter
from tests.handlers.test_envelope import assert_error

T0 = datetime(2026, 5, 1)


@pytest.fixture(scope="module")
def world(admin, make_user, session_factory):
    """Two filters of one user's groups, objects with 1-3 passes in A, 40 % also in B, three "bursty"
    objects with 600 passes each newer than everything else (so a deep page needs the stream to grow),
    objects saved to the first group; written by SQL (the triggers run as for ingest)."""
    alice = make_user(prefix="pages")
    sid = admin.post("/api/streams", json={"name": f"pages-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    ga, fa = make_group_with_filter(alice, admin, sid)
    gb, fb = make_group_with_filter(alice, admin, sid)
    rng = np.random.default_rng(7)
    tag = uuid.uuid4().hex[:6]
    objs = [f"PG{tag}{i:04d}" for i in range(240)]
    rows = []  # (obj, filter, passed_at)
    for i, o in enumerate(objs):
        for k in range(1 + i % 3):
            rows.append((o, fa, T0 + timedelta(minutes=int(rng.integers(0, 20 * 24 * 60)), seconds=k)))
        if rng.random() < 0.4:
            rows.append((o, fb, T0 + timedelta(minutes=int(rng.integers(0, 20 * 24 * 60)))))
    # ties: two objects passing at the same instant (ordered by id)
    rows += [(objs[10], fa, T0 + timedelta(days=5)), (objs[11], fa, T0 + timedelta(days=5))]
    for b in objs[:3]:  # the bursty ones
        rows += [(b, fa, T0 + timedelta(days=21, seconds=s)) for s in range(600)]
    with session_factory() as session, session.begin():
        session.execute(sa.text("INSERT INTO objs (id, ra, dec, healpix, created_at, modified) "
                                "SELECT o, r, d, 0, now(), now() FROM unnest(CAST(:o AS text[]), "
                                "CAST(:r AS float8[]), CAST(:d AS float8[])) AS t(o, r, d)"),
                        {"o": objs, "r": rng.uniform(0, 360, len(objs)).tolist(),
                         "d": rng.uniform(-80, 80, len(objs)).tolist()})
        session.execute(sa.text("INSERT INTO candidates (obj_id, filter_id, passed_at, created_at, modified) "
                                "SELECT o, f, p, now(), now() FROM unnest(CAST(:o AS text[]), CAST(:f AS int[]), "
                                "CAST(:p AS timestamp[])) AS t(o, f, p)"),
                        {"o": [r[0] for r in rows], "f": [r[1] for r in rows], "p": [r[2] for r in rows]})
        ra = dict(session.execute(sa.text("SELECT id, ra FROM objs WHERE id = ANY(:o)"), {"o": objs}).all())
    saved = objs[::9]
    for o in saved:
        assert alice.post("/api/sources", json={"id": o, "group_ids": [ga]}).status_code == 200
    return dict(alice=alice, fa=fa, fb=fb, ga=ga, gb=gb, objs=objs, rows=rows, saved=set(saved), ra=ra)


def expected(world, filters, start=None, end=None, keep=lambda o: True, key=None):
    """The list, brute force: each object's latest pass in the window, newest first (ties by id)."""
    latest = {}
    for o, f, p in world["rows"]:
        if f in filters and (start is None or p >= start) and (end is None or p <= end) and keep(o):
            latest[o] = max(latest.get(o, p), p)
    key = key or (lambda o: (-latest[o].timestamp(), o))
    return [(o, latest[o]) for o in sorted(latest, key=key)]


def got(world, **params):
    r = world["alice"].get("/api/candidates", params=params)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return [(c["id"], datetime.fromisoformat(c["passed_at"])) for c in data["candidates"]], data["totalMatches"]


@pytest.mark.parametrize("case", ["one filter", "two filters", "window", "since", "not saved"])
def test_every_page_equals_brute_force(world, case):
    fa, fb = world["fa"], world["fb"]
    params, want = {
        "one filter": ({"filterIDs": fa}, expected(world, {fa})),
        "two filters": ({"filterIDs": f"{fa},{fb}"}, expected(world, {fa, fb})),
        "window": ({"filterIDs": f"{fa},{fb}", "startDate": (T0 + timedelta(days=4)).isoformat(),
                    "endDate": (T0 + timedelta(days=9)).isoformat()},
                   expected(world, {fa, fb}, T0 + timedelta(days=4), T0 + timedelta(days=9))),
        "since": ({"filterIDs": f"{fa},{fb}", "startDate": (T0 + timedelta(days=9)).isoformat()},
                  expected(world, {fa, fb}, T0 + timedelta(days=9))),
        "not saved": ({"filterIDs": f"{fa},{fb}", "savedStatus": "notSavedToAnySelected"},
                      expected(world, {fa, fb}, keep=lambda o: o not in world["saved"])),
    }[case]
    size = 17
    pages = -(-len(want) // size)
    assert pages > 5
    for number in (1, 2, pages // 2, pages - 1, pages):  # the deep ones need the stream to grow
        page, total = got(world, numPerPage=size, pageNumber=number, **params)
        assert total == len(want)
        assert page == want[(number - 1) * size:number * size], number
    assert_error(world["alice"].get("/api/candidates", params={"numPerPage": size, "pageNumber": pages + 1,
                                                                **params}), 400, "pageNumber")


@pytest.mark.parametrize("sort_by,order", [("ra", "asc"), ("ra", "desc"), ("id", "desc"), ("passed_at", "asc")])
def test_other_sorts_equal_brute_force(world, sort_by, order):
    fa, fb, ra = world["fa"], world["fb"], world["ra"]
    base = dict(expected(world, {fa, fb}))
    sign = 1 if order == "asc" else -1
    if sort_by == "ra":
        key = (lambda o: (sign * ra[o], o))
    elif sort_by == "id":
        key = None
        want = sorted(base, reverse=True)
    else:
        key = (lambda o: (base[o], o))
    want = sorted(base, key=key) if key else want
    size = 23
    for number in (1, 3, -(-len(want) // size)):
        page, total = got(world, filterIDs=f"{fa},{fb}", numPerPage=size, pageNumber=number, sortBy=sort_by,
                          sortOrder=order)
        assert total == len(want)
        assert page == [(o, base[o]) for o in want[(number - 1) * size:number * size]]


def counts(session, fid):
    maintained = session.execute(sa.text("SELECT coalesce(sum(n), 0) FROM candidate_counts WHERE filter_id = :f"),
                                 {"f": fid}).scalar_one()
    pairs = session.execute(sa.text("SELECT count(DISTINCT obj_id) FROM candidates WHERE filter_id = :f"),
                            {"f": fid}).scalar_one()
    kept = session.execute(sa.text("SELECT count(*) FROM candidate_filter_objs WHERE filter_id = :f"),
                           {"f": fid}).scalar_one()
    return maintained, pairs, kept


def test_counts_follow_inserts_deletes_and_folds(admin, make_user, session_factory):
    bob = make_user(prefix="counts")
    sid = admin.post("/api/streams", json={"name": f"counts-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    _, f1 = make_group_with_filter(bob, admin, sid)
    _, f2 = make_group_with_filter(bob, admin, sid)
    names = [f"CT{uuid.uuid4().hex[:8]}" for _ in range(6)]
    for i, n in enumerate(names):
        for day in (1, 2):  # two passes each: one object, counted once
            body = {"id": n, "ra": 10.0 + i, "dec": 5.0, "filter_ids": [f1] if i % 2 else [f1, f2],
                    "passed_at": f"2026-06-0{day}T00:00:00"}
            assert bob.post("/api/candidates", json=body).status_code == 200
    with session_factory() as session:
        assert counts(session, f1) == (6, 6, 6) and counts(session, f2) == (3, 3, 3)
    assert got({"alice": bob}, filterIDs=f1)[1] == 6
    # deleting one object's candidates of one filter, then a whole object (cascade)
    assert bob.delete(f"/api/candidates/{names[0]}/{f1}").status_code == 200
    assert admin.delete(f"/api/objs/{names[1]}").status_code == 200
    with session_factory() as session:
        assert counts(session, f1) == (4, 4, 4) and counts(session, f2) == (3, 3, 3)
        n_rows = session.execute(sa.text("SELECT count(*) FROM candidate_counts WHERE filter_id = :f"),
                                 {"f": f1}).scalar_one()
        assert n_rows > 1
    assert got({"alice": bob}, filterIDs=f1)[1] == 4
    # one row of a pair goes (its latest pass): the pair stays, with its earlier pass as the latest
    with session_factory() as session, session.begin():
        session.execute(sa.text("DELETE FROM candidates WHERE obj_id = :o AND filter_id = :f "
                                "AND passed_at = '2026-06-02'"), {"o": names[2], "f": f1})
    with session_factory() as session:
        assert counts(session, f1) == (4, 4, 4)
        assert session.execute(sa.text("SELECT last_passed_at FROM candidate_filter_objs WHERE filter_id = :f "
                                       "AND obj_id = :o"), {"f": f1, "o": names[2]}).scalar_one() == datetime(2026, 6, 1)
    listed, _ = got({"alice": bob}, filterIDs=f1)
    assert listed[-1] == (names[2], datetime(2026, 6, 1))  # the others passed last on the 2nd
    with session_factory() as session, session.begin():
        fold_candidate_counts(session)
    with session_factory() as session:
        assert counts(session, f1) == (4, 4, 4)
        assert session.execute(sa.text("SELECT count(*) FROM candidate_counts WHERE filter_id = :f"),
                               {"f": f1}).scalar_one() == 1
    # a deleted filter's counts go with the next fold
    assert bob.delete(f"/api/filters/{f2}").status_code == 200
    with session_factory() as session, session.begin():
        fold_candidate_counts(session)
    with session_factory() as session:
        assert counts(session, f2) == (0, 0, 0)
        assert session.execute(sa.text("SELECT count(*) FROM candidate_counts WHERE filter_id = :f"),
                               {"f": f2}).scalar_one() == 0
    assert got({"alice": bob}, filterIDs=f1)[1] == 4


def test_query_id_reuses_the_total_of_its_query(world, session_factory):
    """SkyPortal's queryID: each answer carries one; pages asked with it keep that query's totalMatches
    (while the pages themselves are read afresh); another query, or no id, counts again under a new id."""
    alice, fa, fb = world["alice"], world["fa"], world["fb"]
    params = {"filterIDs": f"{fa},{fb}", "numPerPage": 10}
    first = alice.get("/api/candidates", params=params).json()["data"]
    qid, total = first["queryID"], first["totalMatches"]
    assert qid and total == len(expected(world, {fa, fb}))
    extra = f"PGq{uuid.uuid4().hex[:8]}"
    with session_factory() as session, session.begin():
        session.execute(sa.text("INSERT INTO objs (id, ra, dec, healpix, created_at, modified) "
                                "VALUES (:o, 1, 1, 0, now(), now())"), {"o": extra})
        session.execute(sa.text("INSERT INTO candidates (obj_id, filter_id, passed_at, created_at, modified) "
                                "VALUES (:o, :f, :p, now(), now())"), {"o": extra, "f": fb, "p": T0 + timedelta(days=90)})
    second = alice.get("/api/candidates", params={**params, "pageNumber": 2, "queryID": qid}).json()["data"]
    assert second["totalMatches"] == total and second["queryID"] == qid
    assert extra not in [c["id"] for c in second["candidates"]]  # (the newest is on page 1)
    fresh = alice.get("/api/candidates", params=params).json()["data"]
    assert fresh["totalMatches"] == total + 1 and fresh["queryID"] != qid
    assert fresh["candidates"][0]["id"] == extra
    other = alice.get("/api/candidates", params={"filterIDs": fa, "queryID": qid}).json()["data"]
    assert other["queryID"] != qid and other["totalMatches"] == len(expected(world, {fa}))
    with session_factory() as session, session.begin():
        session.execute(sa.text("DELETE FROM objs WHERE id = :o"), {"o": extra})
