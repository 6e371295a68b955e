"""Profiles: a shared profile is usable by everyone and changeable by its owner or an admin;
listings say `owned` / `can_edit`; tools and knowledge files are stored and validated. And the
sign-up switch."""

from conftest import new_user


def _users(client):
    admin = new_user(client, "admin@x.io")  # the first account is the admin
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    return admin, alice, bob


def test_shared_profiles_usable_by_all_editable_by_owner_or_admin(client, fake_catalog):
    admin, alice, bob = _users(client)
    shared = client.post(
        "/api/profiles",
        json={"name": "Pirate", "instructions": "Talk like a pirate.", "shared": True},
        headers=alice,
    ).json()
    private = client.post("/api/profiles", json={"name": "Mine"}, headers=alice).json()

    listed = {p["id"]: p for p in client.get("/api/profiles", headers=bob).json()}
    assert set(listed) == {shared["id"]}
    assert listed[shared["id"]]["owned"] is False and listed[shared["id"]]["can_edit"] is False
    mine = {p["id"]: p for p in client.get("/api/profiles", headers=alice).json()}
    assert all(p["owned"] and p["can_edit"] for p in mine.values()) and len(mine) == 2
    as_admin = {p["id"]: p for p in client.get("/api/profiles", headers=admin).json()}
    assert set(as_admin) == {shared["id"]}  # an admin does not see private profiles
    assert as_admin[shared["id"]]["owned"] is False and as_admin[shared["id"]]["can_edit"]

    # Bob chats with it: its instructions reach the model.
    conv = client.post("/api/conversations", json={"profile_id": shared["id"]}, headers=bob)
    client.post(
        f"/api/conversations/{conv.json()['id']}/messages", json={"content": "hi"}, headers=bob
    )
    seen, _ = fake_catalog.get("fake-model").calls[-1]
    assert "Talk like a pirate." in seen[0].content

    # Bob may not change it (403: he can see it); a private one is 404 to him.
    sid, pid = shared["id"], private["id"]
    r = client.patch(f"/api/profiles/{sid}", json={"name": "Bob's"}, headers=bob)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert client.delete(f"/api/profiles/{sid}", headers=bob).status_code == 403
    assert client.patch(f"/api/profiles/{pid}", json={"name": "x"}, headers=bob).status_code == 404
    assert (
        client.patch(f"/api/profiles/{pid}", json={"name": "x"}, headers=admin).status_code == 404
    )
    assert client.get(f"/api/profiles/{sid}", headers=bob).json()["name"] == "Pirate"

    # The admin moderates the shared one.
    r = client.patch(f"/api/profiles/{sid}", json={"name": "Polite pirate"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "Polite pirate"
    assert r.json()["owned"] is False
    assert client.delete(f"/api/profiles/{sid}", headers=admin).status_code == 204
    assert client.get(f"/api/profiles/{sid}", headers=alice).status_code == 404


def test_profile_tools_and_knowledge_files_are_stored_and_bounded(client):
    _, alice, bob = _users(client)
    f1, f2 = (
        client.post(
            "/api/files", files={"file": (f"{n}.txt", b"notes " + n.encode())}, headers=alice
        ).json()["id"]
        for n in ("one", "two")
    )
    r = client.post(
        "/api/profiles",
        json={"name": "Researcher", "tools": ["web"], "knowledge_file_ids": [f1, f2]},
        headers=alice,
    )
    assert r.status_code == 201
    p = r.json()
    assert p["tools"] == ["web"] and p["knowledge_file_ids"] == [f1, f2]
    r = client.patch(f"/api/profiles/{p['id']}", json={"tools": ["code"]}, headers=alice)
    assert r.json()["tools"] == ["code"] and r.json()["knowledge_file_ids"] == [f1, f2]
    # Knowledge files must be the owner's: a missing or someone else's id is 422.
    bobs = client.post("/api/files", files={"file": ("b.txt", b"bob")}, headers=bob).json()["id"]
    assert client.post("/api/profiles", json={"name": "Plain"}, headers=alice).json()["tools"] == []
    for bad in (
        {"tools": ["web"] * 11},
        {"tools": ["web_search"]},
        {"tools": ["Not A Tool!"]},
        {"tools": ["x" * 65]},
        {"knowledge_file_ids": ["f"] * 21},
        {"knowledge_file_ids": ["x" * 65]},
        {"knowledge_file_ids": ["f1"]},
        {"knowledge_file_ids": [f1, bobs]},
    ):
        r = client.patch(f"/api/profiles/{p['id']}", json=bad, headers=alice)
        assert r.status_code == 422, (bad, r.text)
    # An explicit null leaves a field alone rather than failing.
    r = client.patch(f"/api/profiles/{p['id']}", json={"tools": None, "name": None}, headers=alice)
    assert r.status_code == 200 and r.json()["tools"] == ["code"]


def test_admin_turns_signup_off_and_a_signup_gets_a_clear_403(client):
    admin = new_user(client, "admin@x.io")
    r = client.put("/api/admin/settings", json={"allow_signup": False}, headers=admin)
    assert r.json()["allow_signup"] is False
    r = client.post("/api/auth/signup", json={"email": "late@x.io", "password": "password-1"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "signup_closed"
    assert "sign-up is closed" in r.json()["error"]["message"]
    client.put("/api/admin/settings", json={"allow_signup": True}, headers=admin)
    new_user(client, "late@x.io")
