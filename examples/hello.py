# Greets, then echoes whatever it gets on stdin (byte for byte, like hello.c).
import sys

payload = sys.stdin.buffer.read()
sys.stdout.buffer.write(b"Hello from FAAS!\n")
sys.stdout.buffer.write(payload)
sys.stdout.buffer.flush()
