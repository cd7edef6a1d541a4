"""Outbound HTTP for faas functions, through the platform's HTTP client.

    import faas
    r = faas.fetch('https://api.example.com/items', method='POST',
                   headers={'Content-Type': 'application/json'},
                   body=b'{"name": "x"}')
    print(r.status, r.headers['content-type'], r.json())

Only the hosts the function was deployed with (`allow=HOST[:PORT]`) are
reachable. A refused request raises PermissionError, one that runs past the
call's deadline TimeoutError, any other failure (connection, TLS, a response
over the size cap) ConnectionError. `urllib.request.urlopen` goes through
the same client (http and https), so existing code works.

The request travels through the file /run/faas/fetch (present only when the
function has grants): write `METHOD URL`, `Name: value` lines, an empty line
and the body; read the answer to its end.
"""

import os as _os

CHANNEL = '/run/faas/fetch'

__all__ = ['fetch', 'Response', 'Headers']


class Headers(dict):
    """Response headers: names in lowercase, looked up in any case; a
    repeated header's values joined with ', '."""

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)

    def __contains__(self, name):
        return dict.__contains__(self, str(name).lower())


class Response:
    """What a request got: `status`, `ok`, `url` (after redirects),
    `headers`, `body` (bytes), `text()`, `json()`."""

    def __init__(self, status, url, headers, body):
        self.status = status
        self.url = url
        self.headers = headers
        self.body = body

    @property
    def ok(self):
        return 200 <= self.status < 300

    def text(self, encoding='utf-8'):
        return self.body.decode(encoding, 'replace')

    def json(self):
        import json

        return json.loads(self.body)

    def __repr__(self):
        return f'<faas.Response {self.status} {self.url}>'


def _host(url):
    rest = url.split('://', 1)[-1]
    return rest.split('/', 1)[0].split('?', 1)[0].rsplit('@', 1)[-1]


def _line(text):
    return str(text).replace('\r', ' ').replace('\n', ' ')


def fetch(url, method='GET', headers=None, body=None):
    """Makes one HTTP request; returns a Response (any status)."""
    host = _host(url)
    if not _os.path.exists(CHANNEL):
        raise PermissionError(
            f'request to {host} refused: this function has no granted hosts '
            '(deploy it with allow=HOST)')
    if body is None:
        body = b''
    elif isinstance(body, str):
        body = body.encode()
    else:
        body = bytes(body)
    items = headers.items() if hasattr(headers, 'items') else (headers or [])
    head = f'{_line(method).upper()} {_line(url)}\n'
    for name, value in items:
        head += f'{_line(name)}: {_line(value)}\n'
    request = memoryview(head.encode() + b'\n' + body)
    fd = _os.open(CHANNEL, _os.O_RDWR)
    try:
        while request:
            request = request[_os.write(fd, request):]
        chunks = []
        while True:
            chunk = _os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        _os.close(fd)
    head, _, payload = b''.join(chunks).partition(b'\n\n')
    lines = head.decode('utf-8', 'replace').split('\n')
    outcome, _, rest = lines[0].partition(' ')
    if outcome == 'denied':
        raise PermissionError(f'request to {host} refused: {rest}')
    if outcome == 'timeout':
        raise TimeoutError(f'request to {host}: {rest}')
    if outcome != 'ok':
        raise ConnectionError(f'request to {host} failed: {rest or "no answer"}')
    status, _, final_url = rest.partition(' ')
    found = Headers()
    for line in lines[1:]:
        name, _, value = line.partition(':')
        name, value = name.strip().lower(), value.strip()
        found[name] = f'{found[name]}, {value}' if name in found else value
    return Response(int(status), final_url, found, payload)


def install_urllib(request_module):
    """Makes urllib.request's default opener send http and https requests
    through fetch() (done when a function imports urllib.request)."""
    import email.message
    import http
    import io
    import urllib.error
    import urllib.response

    class FaasHandler(request_module.BaseHandler):
        handler_order = 100

        def _open(self, req):
            data = req.data
            if data is not None and not isinstance(data, (bytes, bytearray)):
                data = data.read() if hasattr(data, 'read') else b''.join(data)
            headers = [(k, v) for k, v in req.header_items() if k.lower() != 'host']
            try:
                r = fetch(req.full_url, method=req.get_method(), headers=headers, body=data)
            except OSError as e:
                raise urllib.error.URLError(e) from None
            message = email.message.Message()
            for name, value in r.headers.items():
                message[name] = value
            resp = urllib.response.addinfourl(io.BytesIO(r.body), message, r.url, r.status)
            try:
                resp.msg = http.HTTPStatus(r.status).phrase
            except ValueError:
                resp.msg = ''
            return resp

        http_open = _open
        https_open = _open

    request_module.install_opener(request_module.build_opener(FaasHandler))
