"""Pure derivations from one canonical call report: one module per fact, composed in call_facts."""
