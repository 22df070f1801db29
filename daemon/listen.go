package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
)

// caller is who is asking: on the local socket the peer's uid decides; on the
// API listener, the principal whose token was presented.
type caller struct {
	UID       uint32 // meaningful only when Local
	Local     bool
	Principal policy.ID
	Name      string
}

type ctxKey int

const (
	peerUIDKey ctxKey = iota
	remoteKey
)

// peerCredContext records the connecting process's uid (SO_PEERCRED) once per
// connection; the kernel vouches for it, so no password is needed.
func peerCredContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, remoteKey, true)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ctx
	}
	return context.WithValue(ctx, peerUIDKey, cred.Uid)
}

// identify maps a request to its caller. A request whose peer cannot be
// identified is refused rather than treated as anonymous.
func (d *Daemon) identify(r *http.Request) (caller, error) {
	if uid, ok := r.Context().Value(peerUIDKey).(uint32); ok {
		c := caller{UID: uid, Local: true, Principal: policy.Anonymous, Name: "anonymous"}
		d.node.FSM().Read(func(s *cluster.State) {
			if id, ok := s.UserByUID(uid); ok {
				c.Principal, c.Name = id, s.PrincipalName(id)
			}
		})
		return c, nil
	}
	if r.Context().Value(remoteKey) == true {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return caller{}, cluster.Errorf(cluster.CodeDenied, "the API listener needs a token: Authorization: Bearer TOKEN (see `sphere user token`)")
		}
		sum := sha256.Sum256([]byte(token))
		c := caller{Principal: policy.Anonymous}
		d.node.FSM().Read(func(s *cluster.State) {
			for _, u := range s.Users {
				if u.TokenHash != nil && string(u.TokenHash) == string(sum[:]) {
					c.Principal, c.Name = u.ID, u.Name
				}
			}
		})
		if c.Principal == policy.Anonymous {
			return caller{}, cluster.Errorf(cluster.CodeDenied, "unknown API token")
		}
		return c, nil
	}
	return caller{}, cluster.Errorf(cluster.CodeDenied, "cannot identify the caller")
}

type handlerFunc func(ctx context.Context, c caller, body []byte) (any, error)

// method adapts a typed handler to the wire.
func method[Req any](fn func(ctx context.Context, c caller, req Req) (any, error)) handlerFunc {
	return func(ctx context.Context, c caller, body []byte) (any, error) {
		var req Req
		if len(body) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return nil, cluster.Errorf(cluster.CodeInvalid, "malformed request: %v", err)
			}
		}
		return fn(ctx, c, req)
	}
}

// maxRequest bounds a request body; secrets are far smaller.
const maxRequest = 1 << 20

func (d *Daemon) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, internalPrefix) {
		d.serveInternal(w, r)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	h, known := d.methods[name]
	upload := name == api.MDatasetUpload
	if !ok || !(known || upload) || r.Method != http.MethodPost {
		writeError(w, cluster.Errorf(cluster.CodeNotFound, "no such API method %q", r.URL.Path))
		return
	}
	c, err := d.identify(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if r.Header.Get(api.HeaderConsistency) == api.Linearizable {
		if err := d.linearize(r.Context()); err != nil {
			writeError(w, err)
			return
		}
	}
	if upload {
		d.serveUpload(w, r, c)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil {
		writeError(w, cluster.Errorf(cluster.CodeInvalid, "read request: %v", err))
		return
	}
	if len(body) > maxRequest {
		writeError(w, cluster.Errorf(cluster.CodeInvalid, "request larger than %d bytes", maxRequest))
		return
	}
	res, err := h(r.Context(), c, body)
	if err != nil {
		if cluster.CodeOf(err) == cluster.CodeInternal {
			d.log.Error("call failed", "method", name, "principal", c.Name, "err", err)
		}
		writeError(w, err)
		return
	}
	if res == nil {
		res = struct{}{}
	}
	writeJSON(w, res)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var statusOf = map[cluster.ErrCode]int{
	cluster.CodeInvalid:  http.StatusBadRequest,
	cluster.CodeDenied:   http.StatusForbidden,
	cluster.CodeNotFound: http.StatusNotFound,
	cluster.CodeExists:   http.StatusConflict,
	cluster.CodeConflict: http.StatusConflict,
	cluster.CodeNoSpace:  http.StatusInsufficientStorage,
	cluster.CodeReadOnly: http.StatusConflict,
	cluster.CodeInternal: http.StatusInternalServerError,
}

func writeError(w http.ResponseWriter, err error) {
	code := cluster.CodeOf(err)
	if errors.Is(err, cluster.ErrNotLeader) {
		code = cluster.CodeInternal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf[code])
	_ = json.NewEncoder(w).Encode(api.Error{Code: string(code), Message: err.Error()})
}

// listenUnix opens the local API socket. Any local user may connect: the
// daemon decides what each may do by their uid.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	// A socket file left by a killed daemon would make Listen fail; one that
	// still answers belongs to a running daemon and must not be stolen.
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another sphere daemon is listening on %s", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, fmt.Errorf("open socket to all users: %w", err)
	}
	return l, nil
}

func newHTTPServer(h http.HandlerFunc, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:     h,
		ConnContext: peerCredContext,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
