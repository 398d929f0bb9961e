"""OAuth: ``offline_access`` becomes the way to ask for a refresh token (OpenID Connect Core 11).

Before, every client allowed the ``refresh_token`` grant got a refresh token at each sign-in. Now a
refresh token is issued only when the authorization request asks for ``offline_access`` and the user
grants it. Choice for existing clients: every client whose ``grant_types`` include ``refresh_token`` gets
``offline_access`` added to its registered (allowed) scopes, so it can keep receiving refresh tokens —
but only once it asks for ``offline_access`` (and the user consents to it); clients without the refresh
grant are left as they were. The bundled demo RP requests ``offline_access`` and is re-registered with it
at start-up anyway. Idempotent: a client that already allows the scope is not changed.
"""


def up(db):
    for doc in db.clients.find({"grant_types": "refresh_token"}, {"scope": 1}):
        scopes = (doc.get("scope") or "").split()
        if "offline_access" not in scopes:
            db.clients.update_one({"_id": doc["_id"]}, {"$set": {"scope": " ".join(scopes + ["offline_access"])}})
