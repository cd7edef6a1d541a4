<?php
// fibonacci: reads {"n": 50} and prints the n-th Fibonacci number
// (F(0) = 0, F(1) = 1), exactly, in PHP's 64-bit integers:
//   {"n":50,"fib":12586269025}
// n must be an integer from 0 to 92 (F(93) does not fit in 64 bits). On bad
// input it prints {"error":"..."} on stderr and exits 1.
// Same contract as fibonacci.rs, which goes up to n = 186.

const MAX_N = 92;

function fail($msg)
{
    // $msg never holds a quote or a backslash, so it needs no escaping.
    fwrite(STDERR, '{"error":"' . $msg . "\"}\n");
    exit(1);
}

$payload = file_get_contents('php://stdin');
if ($payload === false) {
    fail('cannot read stdin');
}
// Decoded as arrays (any key is fine), so check the shape on the text: a
// valid JSON text is an object exactly when it starts with '{'. Depth 513
// allows 512 nested arrays/objects, like fibonacci.rs.
$data = json_decode($payload, true, 513);
if (json_last_error() !== JSON_ERROR_NONE) {
    fail('payload is not valid JSON');
}
if (substr(ltrim($payload, " \t\n\r"), 0, 1) !== '{') {
    fail('payload must be a JSON object');
}
if (!array_key_exists('n', $data)) {
    fail('missing key n');
}
$n = $data['n'];
if (!is_int($n) || $n < 0 || $n > MAX_N) {
    fail('n must be an integer from 0 to ' . MAX_N);
}

// F(n), computing nothing past it (F(93) would overflow to a float).
$fib = 0;
if ($n > 0) {
    $a = 0;
    $fib = 1;
    for ($i = 1; $i < $n; $i++) {
        [$a, $fib] = [$fib, $a + $fib];
    }
}
echo '{"n":' . $n . ',"fib":' . $fib . "}\n";
