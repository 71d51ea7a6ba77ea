"""The front desk's web console: server-rendered pages over the status log, behind staff accounts."""
