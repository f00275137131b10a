"""The edges: HTTP routes, Socket.IO events, login tokens and transport guards."""
