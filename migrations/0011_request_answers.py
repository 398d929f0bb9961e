"""Sessions: ``request_answers`` (idp.web.sessions.answer_once): the claim of a request stored in a session
(``_id`` its id) and its answer, encrypted; purged by TTL on ``expires`` (the session lifetime)."""
from pymongo import ASCENDING


def up(db):
    if "request_answers" not in set(db.list_collection_names()):
        db.create_collection("request_answers")
    db.request_answers.create_index([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")
