"""The edges: HTTP routes, Socket.IO events, session tokens and transport guards."""
