"""A seeded, simulated fleet that drives icewatch's real inputs: SDK call reports over HTTP, coturn
log lines in files the tailer follows, and probe results from a simulated vantage point, with
scripted STUN/TURN incidents. For the demo, dashboards, alert tests and benchmarks; never a source
of production data (its vantage and SDK names say "simulated")."""
