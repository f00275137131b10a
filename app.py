"""Entry point: pick the async mode (eventlet by default), patch the standard library first, serve the app."""

import os
import sys
import warnings

from dotenv import load_dotenv

load_dotenv(override=False)
ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet").strip().lower()

# Monkey-patching must happen before anything else imports socket, ssl, threading or time.
if ASYNC_MODE == "eventlet":
    # We know eventlet is in bugfix-only mode (the README says so, gevent is the alternative); no banner at start.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()


def raise_open_files_limit() -> None:
    """Every Socket.IO client holds a socket: lift the soft open-files limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError):
        pass


def main() -> int:
    """Build the app from the environment and serve it until interrupted."""
    from chatbot import create_app, socketio
    from chatbot.config import ConfigError

    try:
        app = create_app()
    except ConfigError as exc:
        print(f"chatbotws: configuration error: {exc}", file=sys.stderr)
        return 2
    raise_open_files_limit()
    settings = app.config
    chat = app.extensions["chatbot"]
    socketio.start_background_task(chat.maintenance_loop)
    mode = "demo (no GROQ_API_KEY set)" if chat.provider.demo else f"Groq model {chat.provider.model}"
    print(f"chatbotws: serving on http://{settings['HOST']}:{settings['PORT']} "
          f"({settings['ASYNC_MODE']}, {mode})", file=sys.stderr, flush=True)
    options = {}
    if settings["ASYNC_MODE"] == "eventlet":
        # eventlet's WSGI server otherwise caps simultaneous connections at 1,024; leave room for plain HTTP.
        options["max_size"] = settings["MAX_CONNECTIONS"] + 64
    if settings["ASYNC_MODE"] == "threading":
        options["allow_unsafe_werkzeug"] = True
    socketio.run(app, host=settings["HOST"], port=settings["PORT"], log_output=False, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
