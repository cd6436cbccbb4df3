"""Fault injection on real components: each fault ends in a stated trial status and a report."""
