"""Nothing of another group's objects shows through (issue 8, item 10)."""

import uuid

import sqlalchemy as sa


def test_duplicates_list_only_objects_the_caller_sees(make_user, engine):
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    ga = alice.post("/api/groups", json={"name": f"a-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    gb = bob.post("/api/groups", json={"name": f"b-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    tag = uuid.uuid4().hex[:6]
    mine, also_mine, theirs = f"ZTFa{tag}", f"ZTFc{tag}", f"ZTFb{tag}"
    for who, oid, g, dec in ((alice, mine, ga, 30.0), (alice, also_mine, ga, 30.0002), (bob, theirs, gb, 30.0001)):
        assert who.post("/api/sources", json={"id": oid, "ra": 40.0, "dec": dec, "group_ids": [g]}).status_code == 200
    with engine.begin() as conn:  # as the ingest pipeline records them (both directions)
        for a, b, sep in ((mine, theirs, 0.36), (mine, also_mine, 0.72)):
            conn.execute(sa.text("INSERT INTO obj_duplicates (obj_id, duplicate_obj_id, separation, created_at) "
                                 "VALUES (:a, :b, :s, now()), (:b, :a, :s, now())"), {"a": a, "b": b, "s": sep})
    dups = alice.get(f"/api/sources/{mine}", params={"includeDuplicates": "true"}).json()["data"]["duplicates"]
    assert [d["obj_id"] for d in dups] == [also_mine]
    assert theirs not in alice.get(f"/api/sources/{mine}", params={"includeDuplicates": "true"}).text
    dups = bob.get(f"/api/sources/{theirs}", params={"includeDuplicates": "true"}).json()["data"]["duplicates"]
    assert dups == []
