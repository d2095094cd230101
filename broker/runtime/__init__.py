"""Runtime: configuration, the CLI, the app factory, the follow-up worker, database and Kafka services."""
