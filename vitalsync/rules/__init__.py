"""Stage 3: message kinds × mirror rows × now → planned messages and decisions. No I/O."""
