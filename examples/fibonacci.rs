// fibonacci: reads {"n": 50} and prints the n-th Fibonacci number
// (F(0) = 0, F(1) = 1) computed exactly in u128:
//   {"n":50,"fib":12586269025}
// n must be an integer from 0 to 186 (F(187) does not fit in u128). On bad
// input it prints {"error":"..."} on stderr and exits 1.
//
// The payload is checked by a small, strict JSON parser (RFC 8259: UTF-8,
// escapes, surrogate pairs, number grammar, nesting depth); keys other than
// "n" are allowed and ignored; for a repeated key the last one wins.
use std::io::{self, Read, Write};
use std::process;

const MAX_N: u64 = 186;
const MAX_DEPTH: usize = 512;

fn fail(msg: &str) -> ! {
    // msg never holds a quote or a backslash, so it needs no escaping.
    eprintln!("{{\"error\":\"{}\"}}", msg);
    process::exit(1);
}

/// What a number looked like: integral (no fraction or exponent), its sign,
/// and its integer part (saturated just above MAX_N).
struct Number {
    integral: bool,
    negative: bool,
    value: u64,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    /// Where the (last) value of the top-level "n" starts.
    n_pos: Option<usize>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), ()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ()> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    fn hex4(&mut self) -> Result<u32, ()> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.peek().and_then(|b| (b as char).to_digit(16)).ok_or(())?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    /// A string (the input is known to be UTF-8); returns it decoded.
    fn string(&mut self) -> Result<String, ()> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let b = self.peek().ok_or(())?;
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                0x00..=0x1f => return Err(()),
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek().ok_or(())?;
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = match hi {
                                0xd800..=0xdbff => {
                                    self.literal(b"\\u")?;
                                    let lo = self.hex4()?;
                                    if !(0xdc00..=0xdfff).contains(&lo) {
                                        return Err(());
                                    }
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                }
                                0xdc00..=0xdfff => return Err(()),
                                _ => hi,
                            };
                            char::from_u32(cp).ok_or(())?
                        }
                        _ => return Err(()),
                    };
                    out.push(c);
                }
                _ => {
                    // Copy one whole UTF-8 character.
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let end = self.pos + len;
                    out.push_str(std::str::from_utf8(&self.s[self.pos..end]).map_err(|_| ())?);
                    self.pos = end;
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Number, ()> {
        let negative = self.eat(b'-').is_ok();
        let start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(()),
        }
        let value = self.s[start..self.pos]
            .iter()
            .fold(0u64, |v, d| (v * 10 + u64::from(d - b'0')).min(MAX_N + 1));
        let mut integral = true;
        if self.eat(b'.').is_ok() {
            integral = false;
            if self.digits() == 0 {
                return Err(());
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integral = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(());
            }
        }
        Ok(Number {
            integral,
            negative,
            value,
        })
    }

    fn value(&mut self) -> Result<(), ()> {
        match self.peek().ok_or(())? {
            open @ (b'{' | b'[') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(());
                }
                if open == b'{' {
                    self.object()?;
                } else {
                    self.array()?;
                }
                self.depth -= 1;
                Ok(())
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => Err(()),
        }
    }

    fn object(&mut self) -> Result<(), ()> {
        let top = self.depth == 1;
        self.eat(b'{')?;
        self.skip_ws();
        if self.eat(b'}').is_ok() {
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.skip_ws();
            self.eat(b':')?;
            self.skip_ws();
            if top && key == "n" {
                self.n_pos = Some(self.pos);
            }
            self.value()?;
            self.skip_ws();
            if self.eat(b'}').is_ok() {
                return Ok(());
            }
            self.eat(b',')?;
            self.skip_ws();
        }
    }

    fn array(&mut self) -> Result<(), ()> {
        self.eat(b'[')?;
        self.skip_ws();
        if self.eat(b']').is_ok() {
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_ws();
            if self.eat(b']').is_ok() {
                return Ok(());
            }
            self.eat(b',')?;
            self.skip_ws();
        }
    }
}

/// The n of the payload, or the error to report.
fn parse_n(payload: &[u8]) -> Result<u64, &'static str> {
    const INVALID: &str = "payload is not valid JSON";
    std::str::from_utf8(payload).map_err(|_| INVALID)?;
    let mut p = Parser {
        s: payload,
        pos: 0,
        depth: 0,
        n_pos: None,
    };
    p.skip_ws();
    let is_object = p.peek() == Some(b'{');
    p.value().map_err(|_| INVALID)?;
    p.skip_ws();
    if p.pos != payload.len() {
        return Err(INVALID);
    }
    if !is_object {
        return Err("payload must be a JSON object");
    }
    p.pos = p.n_pos.ok_or("missing key n")?;
    match p.number() {
        Ok(Number {
            integral: true,
            negative,
            value,
        }) if (!negative || value == 0) && value <= MAX_N => Ok(value),
        _ => Err("n must be an integer from 0 to 186"),
    }
}

/// F(n), computing nothing past it (F(187) would overflow).
fn fib(n: u64) -> u128 {
    if n == 0 {
        return 0;
    }
    let (mut a, mut b) = (0u128, 1u128);
    for _ in 1..n {
        let next = a + b;
        a = b;
        b = next;
    }
    b
}

fn main() {
    let mut payload = Vec::new();
    if io::stdin().lock().read_to_end(&mut payload).is_err() {
        fail("cannot read stdin");
    }
    let n = match parse_n(&payload) {
        Ok(n) => n,
        Err(msg) => fail(msg),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{{\"n\":{},\"fib\":{}}}", n, fib(n)).expect("write stdout");
}
