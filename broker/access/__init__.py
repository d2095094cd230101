"""Access: users, groups, streams, tokens and ACLs; authentication and row-level visibility."""
