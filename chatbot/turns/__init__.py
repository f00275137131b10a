"""The turn engine: one turn from user message to stored reply, the stream pump, outbox, pacer and registry."""
