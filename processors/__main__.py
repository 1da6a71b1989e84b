"""``python -m processors`` runs a processor (same as ``icewatch processor``)."""

from collector.cli_root import main

main(["processor"])
