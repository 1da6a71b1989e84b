"""``python -m processors`` runs a processor (same as ``icewatch processor``)."""

from collector.cli import main

main(["processor"])
