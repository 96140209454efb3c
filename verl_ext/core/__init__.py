"""Pure core of SpeciaRL: categories, answer parsing, reward rules and metrics.

Nothing in this package performs I/O or imports verl, torch or an HTTP client, so every
function here is a plain function of Python values and is testable in milliseconds.
"""
