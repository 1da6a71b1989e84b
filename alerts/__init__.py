"""Alert rules, evaluator and notifiers."""
