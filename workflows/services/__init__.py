"""The processes that cross apps: intake, registry check, decisions, credentials, outbox."""
