"""``python -m connector_core``: the ``connector`` command line (extra ``cli``)."""

from connector_core._cli import main

main()
