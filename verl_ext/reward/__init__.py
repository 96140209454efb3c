"""Glue between the SpeciaRL reward and verl's reward loop."""
