package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client calls a daemon over its unix socket (the caller is known by its
// uid) or over the API listener with a bearer token.
type Client struct {
	http       *http.Client
	base       string
	token      string
	consistent bool
}

// Dial returns a client for the daemon listening on a unix socket.
func Dial(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://sphere"}
}

// DialTCP returns a client for a daemon's remote API, authenticated by token.
func DialTCP(addr, token string) *Client {
	return &Client{http: &http.Client{Timeout: 30 * time.Second}, base: "http://" + addr, token: token}
}

// Consistent makes the client's reads linearizable: each call asks the
// daemon to catch up with the cluster's leader before it answers.
func (c *Client) Consistent() *Client {
	c.consistent = true
	return c
}

// CallError is a failed call as the daemon reported it.
type CallError struct {
	Status int
	Code   string
	Msg    string
}

func (e *CallError) Error() string { return e.Msg }

// Call invokes method with req and decodes the result into resp (which may be nil).
func (c *Client) Call(ctx context.Context, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.do(ctx, method, nil, "application/json", bytes.NewReader(body), resp)
}

// Stream invokes a method whose request body is raw bytes (a file being
// uploaded) with its parameters in the query string.
func (c *Client) Stream(ctx context.Context, method string, params url.Values, body io.Reader, resp any) error {
	return c.do(ctx, method, params, "application/octet-stream", body, resp)
}

func (c *Client) do(ctx context.Context, method string, params url.Values, contentType string, body io.Reader, resp any) error {
	u := c.base + "/v1/" + method
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", contentType)
	if c.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.consistent {
		hreq.Header.Set(HeaderConsistency, Linearizable)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("cannot reach the sphere daemon: %w", err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if hresp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e = Error{Code: "internal", Message: fmt.Sprintf("daemon answered %s", hresp.Status)}
		}
		return &CallError{Status: hresp.StatusCode, Code: e.Code, Msg: e.Message}
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}
