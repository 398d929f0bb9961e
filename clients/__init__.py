"""Relying-party clients that use the Deep Authenticator IdP (``clients.demo`` is the demo RP)."""
