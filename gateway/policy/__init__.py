"""Policies as code: residency (GDPR Chapter V), retention (Art. 5(1)(e)), redaction and
pseudonymisation, validated from YAML, versioned immutably, enforced wherever data moves."""
