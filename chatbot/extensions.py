"""Flask extensions, unbound: created here, bound to the app in the factory (so no module imports the package)."""

from flask_socketio import SocketIO

socketio = SocketIO()
