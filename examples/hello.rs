// Greets, then echoes whatever it gets on stdin (byte for byte, like hello.c).
use std::io::{self, Read, Write};

fn main() {
    let mut payload = Vec::new();
    io::stdin().lock().read_to_end(&mut payload).expect("read stdin");
    let stdout = io::stdout();
    let mut out = stdout.lock();
    out.write_all(b"Hello from FAAS!\n").expect("write stdout");
    out.write_all(&payload).expect("write stdout");
    out.flush().expect("flush stdout");
}
