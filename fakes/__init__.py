"""Test and benchmark support, not shipped: fakes of outside services (Groq) that tests/ and bench/ both run.

The Docker image copies only app.py, chatbot/, templates/ and static/; this package stays out of it (.dockerignore).
"""
