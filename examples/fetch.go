// Outbound HTTP from a Go function: copy the faasFetch block into yours.
//
// The function may call only the hosts it was deployed with:
//
//	curl -X POST 'http://127.0.0.1:8080/deploy?name=fetchgo&lang=go&allow=api.example.com' \
//	  --data-binary @examples/fetch.go
//	curl -X POST 'http://127.0.0.1:8080/invoke?fn=fetchgo' --data-binary 'https://api.example.com/status'
//
// This example's input: a first line `URL` (GET) or `METHOD URL`, then the
// request body. It prints the status line, then the response body; a
// refused or failed request prints `FAILED <kind>: <why>` and the call goes
// on.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// faas-fetch: begin ------------------------------------------------------

// Outbound HTTP through the platform's client. No sockets (net/http cannot
// dial on wasip1): the request is written to, and the answer read from,
// the file /run/faas/fetch, which exists only when the function was
// deployed with allow=HOST.
//
//	r, err := faasFetch("POST", "https://api.example.com/items",
//		map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"x"}`))
//	if errors.Is(err, ErrFaasDenied) { ... }
//	fmt.Println(r.Status, r.Header("content-type"), string(r.Body))

// Why a request got no response (test with errors.Is).
var (
	// Refused by the policy: host or port not granted, a private address,
	// the platform's own port, too many requests.
	ErrFaasDenied = errors.New("denied")
	// The call's deadline came first.
	ErrFaasTimeout = errors.New("timeout")
	// Connection, TLS, a response over the size cap, a bad request.
	ErrFaasFailed = errors.New("error")
	// The function has no grants (no /run/faas/fetch).
	ErrFaasNoChannel = errors.New("no-channel")
)

type FaasResponse struct {
	Status  int
	URL     string      // the final URL (after redirects)
	Headers [][2]string // (name, value), names as received
	Body    []byte
}

// Header is the first value of header name (any case).
func (r *FaasResponse) Header(name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func faasFetch(method, url string, headers map[string]string, body []byte) (*FaasResponse, error) {
	f, err := os.OpenFile("/run/faas/fetch", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: no outbound channel: deploy with allow=HOST", ErrFaasNoChannel)
	}
	defer f.Close()
	line := strings.NewReplacer("\r", " ", "\n", " ").Replace
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s\n", line(method), line(url))
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\n", line(k), line(v))
	}
	req.WriteString("\n")
	req.Write(body)
	if _, err := f.Write(req.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFaasFailed, err)
	}
	answer, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFaasFailed, err)
	}
	end := bytes.Index(answer, []byte("\n\n"))
	if end < 0 {
		return nil, fmt.Errorf("%w: no answer", ErrFaasFailed)
	}
	lines := strings.Split(string(answer[:end]), "\n")
	outcome, rest, _ := strings.Cut(lines[0], " ")
	switch outcome {
	case "ok":
	case "denied":
		return nil, fmt.Errorf("%w: %s", ErrFaasDenied, rest)
	case "timeout":
		return nil, fmt.Errorf("%w: %s", ErrFaasTimeout, rest)
	default:
		return nil, fmt.Errorf("%w: %s", ErrFaasFailed, rest)
	}
	status, finalURL, _ := strings.Cut(rest, " ")
	r := &FaasResponse{URL: finalURL, Body: answer[end+2:]}
	r.Status, _ = strconv.Atoi(status)
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			r.Headers = append(r.Headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return r, nil
}

// faas-fetch: end --------------------------------------------------------

func main() {
	// The payload: `[METHOD ]URL`, a line break, then the body.
	input, _ := io.ReadAll(os.Stdin)
	first, body, _ := bytes.Cut(input, []byte("\n"))
	method, url, found := strings.Cut(string(first), " ")
	if !found {
		method, url = "GET", string(first)
	}
	r, err := faasFetch(method, url, nil, body)
	if err != nil {
		kind, why, _ := strings.Cut(err.Error(), ": ")
		fmt.Printf("FAILED %s: %s\n", kind, why)
		return
	}
	fmt.Printf("%d %s\n", r.Status, r.Header("content-type"))
	os.Stdout.Write(r.Body)
}
