"""Tools for replies: the MCP client (its own thread and asyncio loop), the tool registry, the turn's tool loop.

Framework-free (no Flask): the engine hands it what it needs; the edges reach it through the engine.
"""
