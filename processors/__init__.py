"""icewatch processors: pure derivations from one message to rows, the consumer loop, ClickHouse."""
