// Greets, then echoes whatever it gets on stdin (byte for byte, like hello.c).
const fs = require("fs");

const payload = fs.readFileSync(0);
process.stdout.write("Hello from FAAS!\n");
process.stdout.write(payload);
