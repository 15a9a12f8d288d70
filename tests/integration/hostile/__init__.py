"""Attacks a hostile customer can make through servers it controls, run against a real Hermes."""
