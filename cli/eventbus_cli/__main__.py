"""``python -m eventbus_cli`` runs the ``eventbus`` command."""

from .main import main

main()
