"""The trialdesk core: audit, outbox, roles and API plumbing; it imports no domain app."""
