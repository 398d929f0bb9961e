"""``python -m clients.demo``: serve the demo relying party (see clients/demo/__init__.py)."""
from clients.demo import main

main()
