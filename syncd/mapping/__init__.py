"""The mapping language ops write: triggers, conditions, actions, examples."""
