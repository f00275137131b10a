# ChatbotWS: one process (eventlet by default) serving the page and Socket.IO on port 5000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 chatbot

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app.py ./
COPY chatbot ./chatbot
COPY templates ./templates
COPY static ./static
RUN mkdir -p /app/instance && chown chatbot:chatbot /app/instance

USER chatbot
# Listen on every interface inside the container; publish the port with `docker run -p`.
ENV HOST=0.0.0.0 \
    PORT=5000
EXPOSE 5000
VOLUME ["/app/instance"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4)"
CMD ["python", "app.py"]
