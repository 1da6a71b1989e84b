"""icewatch collectors: HTTP ingest of SDK call reports, TURN log tail + syslog, probes."""
