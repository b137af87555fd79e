"""The Flask side of the flask bench group (bench/groups/flask.ts).

Run by Debian's gunicorn with Debian's python3-flask and python3-flask-caching:

    CACHE_REDIS_URL=redis://127.0.0.1:6379 \\
      gunicorn --workers 2 --bind 127.0.0.1:8000 --chdir bench/flask app:app

Three routes answer the same 1 KiB HTML page (page() below; bench/flask/cluster.ts
builds the same bytes, and the group checks they are identical):

- /uncached:          the view, no caching;
- /cached:            the view under @cache.cached(timeout=300);
- /memoized/<item>:   a view returning render(item), a @cache.memoize(timeout=300)
                      function.

The cached view and the memoized function count their runs in Redis
(bench:calls:flask:<name>, on a connection of their own), so the group can check
that every timed request was a hit. Only a miss runs them: a hit costs no count.

CACHE_TYPE comes from the environment: RedisCache (shared by the workers, the
group's main pairing) or SimpleCache (one cache per worker process).
"""

import os

import redis
from flask import Flask
from flask_caching import Cache

PAGE_BYTES = 1024


def page(size=PAGE_BYTES):
    """16 list items and a padding paragraph, exactly `size` bytes (ASCII)."""
    items = "".join(
        f'<li><a href="/items/{i:02d}">Item number {i:02d}</a></li>\n' for i in range(16)
    )
    start = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>cachette bench</title></head>\n<body><h1>Catalogue</h1>\n<ul>\n" + items
    )
    end = "</ul>\n</body></html>\n"
    pad = size - len(start) - len(end) - len("<p></p>\n")
    return start + "<p>" + "." * pad + "</p>\n" + end


BODY = page()
REDIS_URL = os.environ["CACHE_REDIS_URL"]

app = Flask(__name__)
app.config.from_mapping(
    # RedisCache: one store for both workers, on the group's redis-server.
    CACHE_TYPE=os.environ.get("CACHE_TYPE", "RedisCache"),
    CACHE_REDIS_URL=REDIS_URL,
    # Flask-Caching's default prefix, written out (the cachette app uses its own,
    # so the two never read each other's entries on the shared redis-server).
    CACHE_KEY_PREFIX="flask_cache_",
    CACHE_DEFAULT_TIMEOUT=300,
    # SimpleCache's bound (unused by RedisCache): far more than the bench stores.
    CACHE_THRESHOLD=10000,
)
cache = Cache(app)
counts = redis.Redis.from_url(REDIS_URL)


def ran(name):
    counts.incr(f"bench:calls:flask:{name}")


@app.get("/uncached")
def uncached():
    return BODY


@app.get("/cached")
@cache.cached(timeout=300)
def cached():
    ran("cached")
    return BODY


@cache.memoize(timeout=300)
def render(item):
    ran("memoized")
    return BODY


@app.get("/memoized/<int:item>")
def memoized(item):
    return render(item)
