"""Files in the conversation, framework-free: what an upload is (sniff), its safe name (names), its text (extract),
its picture (pictures), its chunks (chunking), and the bounded child process that does the heavy work (worker,
process)."""
