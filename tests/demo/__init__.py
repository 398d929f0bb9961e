"""Tests of the demo relying party (clients/demo)."""
