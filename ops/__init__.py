"""What the Invoke tasks do: synth, delivery, review. `tasks.py` only parses and delegates."""
