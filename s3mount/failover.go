package s3mount

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
)

// failover sends each request to the endpoint that last answered, and
// moves on to the next endpoint when one cannot be reached. A request
// that could not even connect was never seen by the server, so it is sent
// again at once to the next endpoint; one that failed later fails, and
// minio-go's retry of it goes to the next endpoint.
//
// A request keeps the Host header it was signed for (the first
// endpoint's): the nodes of one MinIO deployment share their keys and
// check a signature against the Host header they receive, so it holds on
// whichever node gets the request.
type failover struct {
	base    http.RoundTripper
	hosts   []string // host:port of each endpoint, in the order given
	current atomic.Int32
	log     *slog.Logger
	bucket  string
}

// RoundTrip does not change req (as http.RoundTripper requires): each try
// is a clone, and a retried body comes from req.GetBody.
func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	body := req.Body
	for tries := 1; ; tries++ {
		i := f.current.Load()
		r := req.Clone(req.Context())
		r.Host = req.URL.Host
		r.URL.Host = f.hosts[i]
		r.Body = body
		resp, err := f.base.RoundTrip(r)
		// A caller who gave up says nothing about the endpoint.
		if err == nil || req.Context().Err() != nil {
			return resp, err
		}
		next := (i + 1) % int32(len(f.hosts))
		if f.current.CompareAndSwap(i, next) {
			f.log.Warn("s3 endpoint unreachable; trying the next", "bucket", f.bucket,
				"endpoint", f.hosts[i], "next", f.hosts[next], "reason", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || tries == len(f.hosts) {
			return resp, err
		}
		if body != nil && body != http.NoBody {
			if req.GetBody == nil {
				return resp, err
			}
			if body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}
