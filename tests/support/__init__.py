"""Test support shared by every test folder: one copy of each helper, imported by the conftests.

- ``servers``: a WSGI app (the IdP, a relying party, a receiver) over real HTTP on loopback; a free port.
- ``oidc``: a relying party and its user's browser over plain HTTP (``requests``, not Authlib), PKCE, CSRF.
- ``fixtures``: pytest fixtures several folders use (cheap password hashing, the face-model cache).
- ``html_forms``: the forms of a page and what a browser submits for one (also used by benchmarks/oidc_bench.py).

Import as ``from support.servers import ...`` (``tests/`` is on ``sys.path`` through the root conftest).
"""
