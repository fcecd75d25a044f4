"""A reference point for GET /estimations/{id}, not a service: the least any Python WSGI app can do for
it. One find_one by _id and json.dumps, no framework, no validation, no headers beyond Content-Type,
no errors handled. `make bench` runs it under the same gunicorn settings as this service and Eve, so
the ratio it reaches against Eve is the ceiling for any framework on the same machine and database.
"""

from __future__ import annotations

import json
import os

from bson import ObjectId
from pymongo import MongoClient

_collection = None


def _estimations():
    global _collection
    if _collection is None:  # after the fork: one client per worker
        _collection = MongoClient(os.environ["MONGO_URI"])[os.environ["MONGO_DB_NAME"]]["estimations"]
    return _collection


def app(environ, start_response):
    document = _estimations().find_one({"_id": ObjectId(environ["PATH_INFO"].rsplit("/", 1)[-1])})
    body = json.dumps(document, default=str).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
