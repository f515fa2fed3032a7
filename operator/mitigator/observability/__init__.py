"""What the operator tells the people running it: structured logs (`logs`) and its own
Prometheus metrics (`metrics`). Imports nothing else of mitigator, so every layer may use it."""
