"""Data protection: consent gate, agreements, need-to-know filter, encryption, audit."""
