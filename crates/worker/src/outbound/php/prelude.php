<?php
// faas: outbound HTTP for PHP functions, loaded before the function's code
// (auto_prepend_file). Requests go through the platform's HTTP client over
// the UNIX socket /run/faas/fetch.sock, present only when the function was
// deployed with grants (allow=HOST[:PORT]).
//
//   $r = faas_fetch('https://api.example.com/items', [
//       'method' => 'POST',
//       'headers' => ['Content-Type' => 'application/json'],
//       'body' => json_encode(['name' => 'x']),
//   ]);
//   if ($r !== false) echo $r['status'], ' ', $r['headers']['content-type'], "\n", $r['body'];
//
// A refused or failed request returns false with a warning naming the host.
// file_get_contents('http://...') and ('https://...') go through the same
// client (the http and https stream wrappers are replaced; the context's
// http method, header and content options are honoured).

function faas_fetch(string $url, array $options = [])
{
    $parts = parse_url($url) ?: [];
    $host = isset($parts['host']) ? $parts['host'] . (isset($parts['port']) ? ':' . $parts['port'] : '') : $url;
    $socket = '/run/faas/fetch.sock';
    if (!file_exists($socket)) {
        trigger_error("faas_fetch(): request to $host refused: this function has no granted hosts (deploy it with allow=HOST)", E_USER_WARNING);
        return false;
    }
    $line = fn ($s) => str_replace(["\r", "\n"], ' ', (string) $s);
    $head = strtoupper($line($options['method'] ?? 'GET')) . ' ' . $line($url) . "\n";
    foreach ($options['headers'] ?? [] as $name => $value) {
        $head .= is_int($name) ? $line($value) . "\n" : $line($name) . ': ' . $line($value) . "\n";
    }
    $request = $head . "\n" . (string) ($options['body'] ?? '');
    $s = @stream_socket_client("unix://$socket", $errno, $errstr, 5);
    if ($s === false) {
        trigger_error("faas_fetch(): request to $host failed: cannot reach the platform's client ($errstr)", E_USER_WARNING);
        return false;
    }
    stream_set_timeout($s, 86400);
    for ($off = 0; $off < strlen($request); $off += $n) {
        $n = @fwrite($s, substr($request, $off, 1 << 20));
        if ($n === false || $n === 0) {
            break; // refused (too large): the answer says why
        }
    }
    stream_socket_shutdown($s, STREAM_SHUT_WR);
    $answer = stream_get_contents($s);
    fclose($s);
    $end = strpos((string) $answer, "\n\n");
    if ($end === false) {
        trigger_error("faas_fetch(): request to $host failed: no answer", E_USER_WARNING);
        return false;
    }
    $lines = explode("\n", substr($answer, 0, $end));
    [$outcome, $rest] = explode(' ', array_shift($lines), 2) + [1 => ''];
    if ($outcome !== 'ok') {
        $what = $outcome === 'denied' ? 'refused' : ($outcome === 'timeout' ? 'timed out' : 'failed');
        trigger_error("faas_fetch(): request to $host $what: $rest", E_USER_WARNING);
        return false;
    }
    [$status, $final] = explode(' ', $rest, 2) + [1 => $url];
    $headers = [];
    foreach ($lines as $l) {
        [$name, $value] = explode(':', $l, 2) + [1 => ''];
        $name = strtolower(trim($name));
        $value = trim($value);
        $headers[$name] = isset($headers[$name]) ? $headers[$name] . ', ' . $value : $value;
    }
    return ['status' => (int) $status, 'url' => $final, 'headers' => $headers, 'body' => substr($answer, $end + 2)];
}

/** The http and https stream wrappers: reading a URL with fopen or
 *  file_get_contents sends it through faas_fetch. */
final class FaasHttpStream
{
    /** @var resource|null */
    public $context;
    private string $data = '';
    private int $pos = 0;

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        if (strpbrk($mode, 'waxc+') !== false) {
            trigger_error("fopen($path): HTTP wrapper does not support writeable connections", E_USER_WARNING);
            return false;
        }
        $http = $this->context ? (stream_context_get_options($this->context)['http'] ?? []) : [];
        $headers = $http['header'] ?? [];
        if (is_string($headers)) {
            $headers = preg_split("/\r?\n/", $headers, -1, PREG_SPLIT_NO_EMPTY);
        }
        $r = faas_fetch($path, [
            'method' => $http['method'] ?? 'GET',
            'headers' => $headers,
            'body' => $http['content'] ?? '',
        ]);
        if ($r === false) {
            return false;
        }
        if ($r['status'] >= 400 && empty($http['ignore_errors'])) {
            trigger_error("fopen($path): HTTP request failed! status {$r['status']}", E_USER_WARNING);
            return false;
        }
        $this->data = $r['body'];
        return true;
    }

    public function stream_read(int $count): string|false
    {
        $chunk = substr($this->data, $this->pos, $count);
        $this->pos += strlen($chunk);
        return $chunk;
    }

    public function stream_eof(): bool
    {
        return $this->pos >= strlen($this->data);
    }

    public function stream_stat(): array|false
    {
        return ['size' => strlen($this->data)];
    }

    public function stream_close(): void
    {
        $this->data = '';
    }

    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool
    {
        return false;
    }

    public function url_stat(string $path, int $flags): array|false
    {
        return false;
    }
}

foreach (['http', 'https'] as $faas_scheme) {
    if (in_array($faas_scheme, stream_get_wrappers(), true)) {
        stream_wrapper_unregister($faas_scheme);
    }
    stream_wrapper_register($faas_scheme, FaasHttpStream::class, STREAM_IS_URL);
}
unset($faas_scheme);
